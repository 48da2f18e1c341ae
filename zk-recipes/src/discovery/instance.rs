//! `ServiceInstance` and its JSON form as curator-x-discovery's Jackson
//! serializer writes it (RECIPES.md §B17): fields in Curator's order,
//! `payload` and `uriSpec` as `null` when absent, unknown properties
//! ignored when reading. Pure.

use serde_json::{json, Value};

/// How the instance's node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// EPHEMERAL (Curator's default).
    Dynamic,
    /// EPHEMERAL_SEQUENTIAL.
    DynamicSequential,
    /// PERSISTENT.
    Static,
    /// PERSISTENT.
    Permanent,
}

impl ServiceType {
    /// The name curator-x-discovery writes in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Dynamic => "DYNAMIC",
            ServiceType::DynamicSequential => "DYNAMIC_SEQUENTIAL",
            ServiceType::Static => "STATIC",
            ServiceType::Permanent => "PERMANENT",
        }
    }

    /// The type named `text` in JSON.
    pub fn parse(text: &str) -> Option<ServiceType> {
        [
            ServiceType::Dynamic,
            ServiceType::DynamicSequential,
            ServiceType::Static,
            ServiceType::Permanent,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }

    /// The node mode instances of this type are registered with.
    pub fn create_mode(self) -> zk_client::CreateMode {
        use zk_client::CreateMode;
        match self {
            ServiceType::Dynamic => CreateMode::Ephemeral,
            ServiceType::DynamicSequential => CreateMode::EphemeralSequential,
            ServiceType::Static | ServiceType::Permanent => CreateMode::Persistent,
        }
    }
}

/// One registered instance of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance {
    /// The service name (the parent node).
    pub name: String,
    /// The instance id (the node name).
    pub id: String,
    /// Host address, if any.
    pub address: Option<String>,
    /// Plain port, if any.
    pub port: Option<i32>,
    /// TLS port, if any.
    pub ssl_port: Option<i32>,
    /// The payload as Jackson wrote it (an object carrying `@class` for
    /// Java readers), or `None`.
    pub payload: Option<Value>,
    /// Epoch milliseconds.
    pub registration_time_utc: i64,
    /// How the instance node lives.
    pub service_type: ServiceType,
    /// Curator's `UriSpec` object (`{"parts":[…]}`), kept as JSON.
    pub uri_spec: Option<Value>,
    /// False for an instance taken out of rotation.
    pub enabled: bool,
}

impl ServiceInstance {
    /// An instance of `name` with a random id, the local address, now as
    /// its registration time, DYNAMIC and enabled.
    pub fn new(name: &str) -> ServiceInstance {
        let address = std::str::from_utf8(&crate::local_addr::default_node_data())
            .ok()
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        ServiceInstance {
            name: name.to_string(),
            id: crate::paths::uuid_v4(&mut rand::thread_rng()),
            address,
            port: None,
            ssl_port: None,
            payload: None,
            registration_time_utc: i64::try_from(crate::queue::now_epoch_ms()).unwrap_or(i64::MAX),
            service_type: ServiceType::Dynamic,
            uri_spec: None,
            enabled: true,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    /// Sets the address.
    pub fn with_address(mut self, address: &str) -> Self {
        self.address = Some(address.to_string());
        self
    }

    /// Sets the port.
    pub fn with_port(mut self, port: i32) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the JSON payload.
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the service type.
    pub fn with_service_type(mut self, service_type: ServiceType) -> Self {
        self.service_type = service_type;
        self
    }

    /// The node's bytes: Curator's JSON, fields in its order. (Written
    /// field by field: a `serde_json` map would sort the keys.)
    pub fn to_json(&self) -> Vec<u8> {
        let fields: [(&str, Value); 10] = [
            ("name", json!(self.name)),
            ("id", json!(self.id)),
            ("address", json!(self.address)),
            ("port", json!(self.port)),
            ("sslPort", json!(self.ssl_port)),
            ("payload", json!(self.payload)),
            ("registrationTimeUTC", json!(self.registration_time_utc)),
            ("serviceType", json!(self.service_type.as_str())),
            ("uriSpec", json!(self.uri_spec)),
            ("enabled", json!(self.enabled)),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
            .collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    }

    /// Reads an instance; unknown properties are ignored, missing optional
    /// ones default as in Curator (`enabled` true, `serviceType` DYNAMIC).
    pub fn from_json(data: &[u8]) -> Result<ServiceInstance, String> {
        let value: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        let object = value.as_object().ok_or("not a JSON object")?;
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let int = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
        };
        let present = |key: &str| object.get(key).filter(|v| !v.is_null()).cloned();
        Ok(ServiceInstance {
            name: text("name").ok_or("no name")?,
            id: text("id").ok_or("no id")?,
            address: text("address"),
            port: int("port"),
            ssl_port: int("sslPort"),
            payload: present("payload"),
            registration_time_utc: object
                .get("registrationTimeUTC")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            service_type: match text("serviceType") {
                None => ServiceType::Dynamic,
                Some(t) => ServiceType::parse(&t).ok_or(format!("unknown serviceType {t}"))?,
            },
            uri_spec: present("uriSpec"),
            enabled: object
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_curators_fields_in_curators_order() {
        let instance = ServiceInstance::new("api")
            .with_id("i1")
            .with_address("10.0.0.1")
            .with_port(8080);
        let text = String::from_utf8(instance.to_json()).unwrap();
        let keys = [
            "\"name\"",
            "\"id\"",
            "\"address\"",
            "\"port\"",
            "\"sslPort\"",
            "\"payload\"",
            "\"registrationTimeUTC\"",
            "\"serviceType\"",
            "\"uriSpec\"",
            "\"enabled\"",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains("\"serviceType\":\"DYNAMIC\""), "{text}");
        assert!(text.contains("\"sslPort\":null"), "{text}");
    }

    #[test]
    fn instances_written_by_curator_are_read_ignoring_unknown_fields() {
        let java = br#"{"name":"api","id":"abc","address":"10.1.2.3","port":80,
            "sslPort":null,"payload":{"@class":"com.x.Details","zone":"a"},
            "registrationTimeUTC":1700000000000,"serviceType":"STATIC",
            "uriSpec":{"parts":[{"value":"scheme","variable":true}]},
            "somethingNew":1}"#;
        let read = ServiceInstance::from_json(java).unwrap();
        assert_eq!(read.port, Some(80));
        assert_eq!(read.ssl_port, None);
        assert_eq!(read.service_type, ServiceType::Static);
        assert!(read.enabled, "enabled defaults to true when omitted");
        assert_eq!(read.payload.unwrap()["@class"], "com.x.Details");
        assert_eq!(
            ServiceInstance::from_json(&ServiceInstance::new("x").with_id("y").to_json())
                .unwrap()
                .id,
            "y"
        );
        assert!(ServiceInstance::from_json(b"[1]").is_err());
    }
}
