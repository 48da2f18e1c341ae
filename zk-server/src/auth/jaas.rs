//! The part of a JAAS login configuration ZooKeeper servers read: the
//! `Server` section with Apache's `DigestLoginModule` and its
//! `user_<name>="<password>"` options:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! Other login modules (Kerberos) are refused: we cannot honour them.

use std::collections::BTreeMap;
use std::path::Path;

pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JaasError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("no 'Server' section in the JAAS configuration")]
    NoServerSection,
    #[error("login module {0} is not supported (only {DIGEST_LOGIN_MODULE})")]
    UnsupportedModule(String),
    #[error("malformed JAAS configuration: {0}")]
    Malformed(String),
    #[error("the 'Server' section names no user_<name>=\"<password>\"")]
    NoUsers,
}

/// Users and passwords of the `Server` section.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ServerLogin {
    pub users: BTreeMap<String, String>,
}

impl std::fmt::Debug for ServerLogin {
    /// Never prints the passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLogin")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

pub fn load(path: &Path) -> Result<ServerLogin, JaasError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JaasError::Read(path.display().to_string(), e.to_string()))?;
    parse(&text)
}

/// Tokens: words, quoted strings, and the punctuation `{ } ; =`.
fn tokens(text: &str) -> Result<Vec<String>, JaasError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '}' | ';' | '=' => out.push(c.to_string()),
            '"' => {
                let mut s = String::from("\"");
                loop {
                    match chars.next() {
                        Some('\\') => {
                            if let Some(n) = chars.next() {
                                s.push(n)
                            }
                        }
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err(JaasError::Malformed("unterminated string".into())),
                    }
                }
                out.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};=\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn unquote(t: &str) -> &str {
    t.strip_prefix('"').unwrap_or(t)
}

pub fn parse(text: &str) -> Result<ServerLogin, JaasError> {
    let toks = tokens(text)?;
    let mut i = 0;
    let next = |i: &mut usize| -> Result<&str, JaasError> {
        let t = toks
            .get(*i)
            .ok_or_else(|| JaasError::Malformed("unexpected end".into()))?;
        *i += 1;
        Ok(t.as_str())
    };
    let mut server = None;
    while i < toks.len() {
        let section = next(&mut i)?.to_string();
        if next(&mut i)? != "{" {
            return Err(JaasError::Malformed(format!(
                "expected '{{' after {section}"
            )));
        }
        let mut users = BTreeMap::new();
        // Entries: module flag (key=value)* ;
        loop {
            let module = next(&mut i)?.to_string();
            if module == "}" {
                break;
            }
            let _flag = next(&mut i)?;
            loop {
                let key = next(&mut i)?.to_string();
                if key == ";" {
                    break;
                }
                if next(&mut i)? != "=" {
                    return Err(JaasError::Malformed(format!("expected '=' after {key}")));
                }
                let value = unquote(next(&mut i)?).to_string();
                if let Some(user) = key.strip_prefix("user_") {
                    users.insert(user.to_string(), value);
                }
            }
            if section == "Server" && module != DIGEST_LOGIN_MODULE {
                return Err(JaasError::UnsupportedModule(module));
            }
        }
        if toks.get(i).map(String::as_str) == Some(";") {
            i += 1;
        }
        if section == "Server" {
            server = Some(users);
        }
    }
    let users = server.ok_or(JaasError::NoServerSection)?;
    if users.is_empty() {
        return Err(JaasError::NoUsers);
    }
    Ok(ServerLogin { users })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_section_yields_its_users() {
        let login = parse(
            "// comment\nServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_super=\"adminsecret\"\n  user_bob=\"bob\\\"s\";\n};\n\
             Client { org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"bob\" password=\"x\"; };\n",
        )
        .unwrap();
        assert_eq!(login.users["super"], "adminsecret");
        assert_eq!(login.users["bob"], "bob\"s");
        assert_eq!(login.users.len(), 2);
        assert!(!format!("{login:?}").contains("adminsecret"));
    }

    #[test]
    fn kerberos_or_a_missing_section_is_refused() {
        assert_eq!(
            parse("Client { m required; };"),
            Err(JaasError::NoServerSection)
        );
        assert!(matches!(
            parse(
                "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };"
            ),
            Err(JaasError::UnsupportedModule(_))
        ));
        assert!(matches!(
            parse("Server { a b"),
            Err(JaasError::Malformed(_))
        ));
    }
}
