//! Access control: the auth providers (world, digest, ip, super, auth;
//! WIRE.md §16), `checkACL` (SEMANTICS.md §6.2), `fixupACL`, getACL digest
//! masking and whoAmI.

use base64::Engine;
use sha1::{Digest, Sha1};
use zk_proto::{Acl, ClientInfo, ErrorCode, Id, Perms};

use super::java_order::{bucket, string_hash};
use super::DbConfig;

pub const WORLD: &str = "world";
pub const ANYONE: &str = "anyone";
pub const DIGEST: &str = "digest";
pub const IP: &str = "ip";
pub const SUPER: &str = "super";
pub const AUTH: &str = "auth";
pub const SASL: &str = "sasl";

/// The schemes with a registered server-side provider. `world`, `super`
/// and `auth` have none: they are handled by name, never authenticated.
fn has_provider(config: &DbConfig, scheme: &str) -> bool {
    scheme == IP
        || (scheme == DIGEST && config.digest_enabled)
        || (scheme == SASL && config.sasl_enabled)
}

/// Providers whose identities prove who the client is (used to expand
/// `auth` ACL entries). An `ip` identity is only where it connects from.
fn is_authenticated_scheme(config: &DbConfig, scheme: &str) -> bool {
    (scheme == DIGEST && config.digest_enabled) || (scheme == SASL && config.sasl_enabled)
}

/// `user:base64(SHA1("user:password"))`, the digest identity of the
/// `user:password` credential. Text without `:` hashes as a whole and
/// names itself as the user, as Apache's `split(":", 2)` does.
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(id_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// addAuth: the identities a successful authentication adds to the
/// connection, or AuthFailed for unknown schemes.
pub fn authenticate(
    config: &DbConfig,
    scheme: &str,
    auth: Option<&[u8]>,
    remote_ip: &str,
) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        // A null secret is a NullPointerException in Apache's digest
        // provider, which its packet handler answers AuthFailed.
        DIGEST if config.digest_enabled => {
            let auth = auth.ok_or(ErrorCode::AuthFailed)?;
            let digest = generate_digest(&String::from_utf8_lossy(auth));
            let mut ids = Vec::with_capacity(2);
            if config.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(Id::new(SUPER, ""));
            }
            ids.push(Id::new(DIGEST, digest));
            Ok(ids)
        }
        IP => Ok(vec![Id::new(IP, remote_ip)]),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// `checkACL`: does one of `auth` hold one of the bits of `perm` on a node
/// whose ACL is `acl`?
pub fn check(config: &DbConfig, acl: &[Acl], perm: Perms, auth: &[Id]) -> Result<(), ErrorCode> {
    if config.skip_acl || acl.is_empty() || auth.iter().any(|id| id.scheme == SUPER) {
        return Ok(());
    }
    let granted = acl
        .iter()
        .filter(|entry| entry.perms & perm.0 != 0)
        .any(|entry| entry_matches(config, &entry.id, auth));
    if granted {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn entry_matches(config: &DbConfig, entry: &Id, auth: &[Id]) -> bool {
    if entry.scheme == WORLD && entry.id == ANYONE {
        return true;
    }
    if !has_provider(config, &entry.scheme) {
        return false;
    }
    auth.iter()
        .filter(|id| id.scheme == entry.scheme)
        .any(|id| match entry.scheme.as_str() {
            IP => ip_matches(&id.id, &entry.id),
            _ => id.id == entry.id,
        })
}

/// `fixupACL`: what a create or setACL really stores. Duplicates go,
/// `auth` entries become the caller's authenticated identities, and every
/// other entry must be valid for its scheme; otherwise InvalidACL.
///
/// Null schemes and ids (kept by [`Id`] from the wire) meet Apache's code
/// as they do there: where Apache dereferences one (comparing duplicates,
/// the `world` id, the `digest` and `ip` id checks) it fails with a
/// `NullPointerException`, answered MarshallingError; elsewhere a null is
/// an empty string (docs/COMPATIBILITY.md, "Malformed requests").
pub fn fixup(config: &DbConfig, auth: &[Id], acl: &[Acl]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !java_contains(&unique, entry)? {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        if id.scheme_is_null() {
            return Err(ErrorCode::InvalidAcl);
        }
        if id.scheme == WORLD && id.id_is_null() {
            return Err(NULL_DEREFERENCE);
        }
        if id.scheme == WORLD && id.id == ANYONE {
            fixed.push(entry.clone());
        } else if id.scheme == AUTH {
            let before = fixed.len();
            fixed.extend(
                java_set_order(auth)
                    .into_iter()
                    .filter(|cid| is_authenticated_scheme(config, &cid.scheme))
                    .map(|cid| Acl {
                        perms: entry.perms,
                        id: cid.clone(),
                    }),
            );
            if fixed.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if !has_provider(config, &id.scheme) {
            return Err(ErrorCode::InvalidAcl);
        } else if id.id_is_null() && matches!(id.scheme.as_str(), DIGEST | IP) {
            return Err(NULL_DEREFERENCE);
        } else if id_is_valid(&id.scheme, &id.id) {
            fixed.push(Acl::new(entry.perms(), Id::new(&id.scheme, &id.id)));
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// What Apache answers where its code dereferences a null from the wire:
/// the `NullPointerException` is caught as any unexpected exception and
/// answered MarshallingError.
pub const NULL_DEREFERENCE: ErrorCode = ErrorCode::MarshallingError;

/// `ArrayList.contains(entry)` with the jute-generated `ACL.equals`, as
/// Apache's `removeDuplicates` runs it: `entry.equals(kept)` compares the
/// perms, then `entry`'s scheme with `kept`'s, then the ids, calling
/// `equals` on `entry`'s strings, so a null there fails once the
/// comparison reaches it.
fn java_contains(kept: &[&Acl], entry: &Acl) -> Result<bool, ErrorCode> {
    for k in kept {
        if entry.perms != k.perms {
            continue;
        }
        if entry.id.scheme_is_null() {
            return Err(NULL_DEREFERENCE);
        }
        if k.id.scheme_is_null() || entry.id.scheme != k.id.scheme {
            continue;
        }
        if entry.id.id_is_null() {
            return Err(NULL_DEREFERENCE);
        }
        if !k.id.id_is_null() && entry.id.id == k.id.id {
            return Ok(true);
        }
    }
    Ok(false)
}

fn id_is_valid(scheme: &str, id: &str) -> bool {
    match scheme {
        DIGEST => digest_id_is_valid(id),
        IP => ip_id_is_valid(id),
        // Apache's SASLAuthenticationProvider: a Kerberos-style name; a
        // plain user name, or `service/host@REALM`.
        SASL => !id.is_empty() && (!id.contains('@') || id.matches('@').count() == 1),
        _ => false,
    }
}

/// A digest ACL id is `user:hash`: Java's `split(":")` (which drops
/// trailing empty parts) must give exactly two parts.
pub fn digest_id_is_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// getACL for a caller with READ but not ADMIN: digest hashes are hidden,
/// `user:hash` becomes `user:x`.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme != DIGEST {
                return entry.clone();
            }
            let masked = match entry.id.id.find(':') {
                Some(i) => format!("{}:x", &entry.id.id[..i]),
                None => entry.id.id.clone(),
            };
            Acl {
                perms: entry.perms,
                id: Id::new(DIGEST, masked),
            }
        })
        .collect()
}

/// The jute-generated `Id.hashCode`.
fn java_id_hash(id: &Id) -> i32 {
    let h = 17i32.wrapping_mul(37).wrapping_add(string_hash(&id.scheme));
    h.wrapping_mul(37).wrapping_add(string_hash(&id.id))
}

/// A connection's identities in the order Apache lists them.
///
/// Apache keeps them in a set backed by a `ConcurrentHashMap`, so whoAmI
/// and the `auth` ACL pseudo-scheme see them in that map's iteration order:
/// by hash bucket, then insertion order within a bucket (the zkCli capture
/// shows `ip` before `digest:u`, the differential tests `digest:alice`
/// before `ip`; both follow from the bucket order). The table has 16 slots
/// until 12 entries, then doubles each time it is three-quarters full; the
/// reordering Java's resize may do within a bucket is not modelled.
pub fn java_set_order(auth: &[Id]) -> Vec<&Id> {
    let mut table_len = 16;
    while auth.len() >= table_len - table_len / 4 {
        table_len *= 2;
    }
    let mut ordered: Vec<&Id> = auth.iter().collect();
    ordered.sort_by_key(|id| bucket(java_id_hash(id), table_len));
    ordered
}

/// whoAmI: one entry per identity, the user as its provider names it, in
/// Apache's order ([`java_set_order`]).
pub fn client_infos(auth: &[Id]) -> Vec<ClientInfo> {
    java_set_order(auth)
        .into_iter()
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: match id.scheme.as_str() {
                DIGEST => id.id.split(':').next().unwrap_or_default().to_owned(),
                IP | SASL => id.id.clone(),
                _ => String::new(),
            },
        })
        .collect()
}

/// An address as bytes: only a dotted quad of decimal numbers 0..=255
/// (Java's `Integer.parseInt` accepts a leading `+` and leading zeros).
/// Apache 3.8 and 3.9 up to 3.9.3 know no IPv6 here, so an IPv6 ACL is
/// InvalidACL and an IPv6 client matches no `ip` entry; 3.9.4 added IPv6
/// (ZOOKEEPER-4240, docs/COMPATIBILITY.md).
fn address_bytes(text: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut bytes = Vec::with_capacity(4);
    for part in parts {
        match part.parse::<i32>() {
            Ok(v @ 0..=255) => bytes.push(v as u8),
            _ => return None,
        }
    }
    Some(bytes)
}

/// Splits `addr[/bits]` into the address bytes and the prefix length,
/// rejecting prefixes longer than the address.
fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let bytes = address_bytes(addr)?;
    let max = bytes.len() * 8;
    let bits = match bits {
        None => max,
        Some(text) => match text.parse::<i64>() {
            Ok(b) if (0..=max as i64).contains(&b) => b as usize,
            _ => return None,
        },
    };
    Some((bytes, bits))
}

fn ip_id_is_valid(expr: &str) -> bool {
    parse_ip_expr(expr).is_some()
}

/// Does the connection address `remote` fall inside the ACL's
/// `addr[/bits]`? Only IPv4 addresses match anything.
pub fn ip_matches(remote: &str, expr: &str) -> bool {
    let (Some((acl_addr, bits)), Some(remote_addr)) = (parse_ip_expr(expr), address_bytes(remote))
    else {
        return false;
    };
    if acl_addr.len() != remote_addr.len() {
        return false;
    }
    let full_bytes = bits / 8;
    let rest = bits % 8;
    if acl_addr[..full_bytes] != remote_addr[..full_bytes] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    acl_addr[full_bytes] & mask == remote_addr[full_bytes] & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DbConfig {
        DbConfig::default()
    }

    fn acl(perms: Perms, scheme: &str, id: &str) -> Acl {
        Acl::new(perms, Id::new(scheme, id))
    }

    #[test]
    fn digest_matches_the_documented_examples() {
        assert_eq!(
            generate_digest("user1:12345"),
            "user1:+owfoSBn/am19roBPzR1/MfCblE="
        );
        assert_eq!(
            generate_digest("zookeeper:admin"),
            "zookeeper:qW/HnTfCSoQpB5G8LgkwT3IbiFc="
        );
    }

    #[test]
    fn digest_auth_adds_the_digest_identity() {
        let ids = authenticate(&config(), "digest", Some(b"user1:12345"), "127.0.0.1").unwrap();
        assert_eq!(
            ids,
            vec![Id::new("digest", "user1:+owfoSBn/am19roBPzR1/MfCblE=")]
        );
    }

    #[test]
    fn the_super_digest_also_grants_super() {
        let cfg = DbConfig {
            super_digest: Some("zookeeper:qW/HnTfCSoQpB5G8LgkwT3IbiFc=".into()),
            ..config()
        };
        let ids = authenticate(&cfg, "digest", Some(b"zookeeper:admin"), "127.0.0.1").unwrap();
        assert_eq!(ids[0], Id::new("super", ""));
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn unknown_schemes_and_disabled_digest_fail_auth() {
        for scheme in ["world", "super", "auth", "kerberos"] {
            assert_eq!(
                authenticate(&config(), scheme, Some(b"x"), "1.2.3.4"),
                Err(ErrorCode::AuthFailed)
            );
        }
        let cfg = DbConfig {
            digest_enabled: false,
            ..config()
        };
        assert_eq!(
            authenticate(&cfg, "digest", Some(b"a:b"), "1.2.3.4"),
            Err(ErrorCode::AuthFailed)
        );
    }

    #[test]
    fn ip_auth_adds_the_remote_address() {
        assert_eq!(
            authenticate(&config(), "ip", Some(b""), "10.0.0.7").unwrap(),
            vec![Id::new("ip", "10.0.0.7")]
        );
    }

    #[test]
    fn world_anyone_and_empty_acls_allow_everyone() {
        assert_eq!(
            check(&config(), &Acl::open_unsafe(), Perms::WRITE, &[]),
            Ok(())
        );
        assert_eq!(check(&config(), &[], Perms::ADMIN, &[]), Ok(()));
    }

    #[test]
    fn missing_permission_bits_are_no_auth() {
        assert_eq!(
            check(&config(), &Acl::read_unsafe(), Perms::WRITE, &[]),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn any_one_of_several_requested_bits_suffices() {
        let acl = [acl(Perms::ADMIN, "world", "anyone")];
        assert_eq!(
            check(&config(), &acl, Perms::READ | Perms::ADMIN, &[]),
            Ok(())
        );
    }

    #[test]
    fn digest_entries_match_by_exact_identity() {
        let acl = [acl(
            Perms::ALL,
            "digest",
            "user1:+owfoSBn/am19roBPzR1/MfCblE=",
        )];
        let me = [Id::new("digest", "user1:+owfoSBn/am19roBPzR1/MfCblE=")];
        let other = [Id::new("digest", "user2:abc")];
        assert_eq!(check(&config(), &acl, Perms::READ, &me), Ok(()));
        assert_eq!(
            check(&config(), &acl, Perms::READ, &other),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn super_and_skip_acl_bypass_every_check() {
        let acl = [acl(Perms::READ, "digest", "a:b")];
        assert_eq!(
            check(&config(), &acl, Perms::ADMIN, &[Id::new("super", "")]),
            Ok(())
        );
        let cfg = DbConfig {
            skip_acl: true,
            ..config()
        };
        assert_eq!(check(&cfg, &acl, Perms::ADMIN, &[]), Ok(()));
    }

    #[test]
    fn ip_entries_match_by_prefix() {
        assert!(ip_matches("10.1.2.3", "10.1.0.0/16"));
        assert!(!ip_matches("10.2.2.3", "10.1.0.0/16"));
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(ip_matches("10.1.2.3", "10.1.2.0/28"));
        assert!(!ip_matches("10.1.2.30", "10.1.2.0/28"));
        assert!(
            !ip_matches("0:0:0:0:0:0:0:1", "::1"),
            "no IPv6 before 3.9.4"
        );
        assert!(!ip_matches("127.0.0.1", "::1/0"));
        let entries = [acl(Perms::READ, "ip", "127.0.0.0/8")];
        assert_eq!(
            check(
                &config(),
                &entries,
                Perms::READ,
                &[Id::new("ip", "127.0.0.1")]
            ),
            Ok(())
        );
    }

    #[test]
    fn malformed_ip_entries_are_invalid() {
        assert!(ip_id_is_valid("1.2.3.4/32"));
        assert!(
            ip_id_is_valid("+1.2.3.04/0"),
            "Java's parseInt takes + and 0s"
        );
        for bad in [
            "::1",
            "::1/128",
            "fe80::1",
            "1.2.3",
            "1.2.3.256",
            "1.2.3.4/33",
            "::ffff:1.2.3.4",
            "1.2.3.4/x",
            "host",
        ] {
            assert!(!ip_id_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn digest_ids_need_exactly_user_and_hash() {
        assert!(digest_id_is_valid("u:h"));
        assert!(digest_id_is_valid("u:h:"));
        assert!(!digest_id_is_valid("u:"));
        assert!(!digest_id_is_valid("u"));
        assert!(!digest_id_is_valid("u:h:i"));
    }

    fn null_id(perms: Perms, scheme: &str) -> Acl {
        Acl::new(perms, Id::from_wire(Some(scheme.into()), None))
    }

    #[test]
    fn a_null_auth_id_is_the_creators_identities_as_kazoo_sends_it() {
        let me = [Id::new("digest", "u:h")];
        let fixed = fixup(&config(), &me, &[null_id(Perms::ALL, "auth")]).unwrap();
        assert_eq!(fixed, vec![acl(Perms::ALL, "digest", "u:h")]);
    }

    #[test]
    fn a_null_id_where_apache_reads_it_is_a_marshalling_error() {
        for scheme in ["world", "digest", "ip"] {
            assert_eq!(
                fixup(&config(), &[], &[null_id(Perms::ALL, scheme)]),
                Err(ErrorCode::MarshallingError),
                "{scheme}"
            );
        }
        assert_eq!(
            fixup(&config(), &[], &[null_id(Perms::ALL, "x509")]),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn an_invalid_entry_before_a_null_id_decides_first() {
        let input = [acl(Perms::ALL, "nope", "x"), null_id(Perms::ALL, "world")];
        assert_eq!(fixup(&config(), &[], &input), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn comparing_duplicates_fails_on_a_null_as_javas_equals_does() {
        let me = [Id::new("digest", "u:h")];
        let same_perms = [null_id(Perms::ALL, "auth"), null_id(Perms::ALL, "auth")];
        assert_eq!(
            fixup(&config(), &me, &same_perms),
            Err(ErrorCode::MarshallingError)
        );
        let other_perms = [null_id(Perms::ALL, "auth"), null_id(Perms::READ, "auth")];
        assert!(fixup(&config(), &me, &other_perms).is_ok());
        let null_scheme = Acl::new(Perms::ALL, Id::from_wire(None, Some("x".into())));
        assert_eq!(
            fixup(
                &config(),
                &[],
                &[acl(Perms::ALL, "world", "anyone"), null_scheme.clone()]
            ),
            Err(ErrorCode::MarshallingError)
        );
        assert_eq!(
            fixup(&config(), &[], &[null_scheme]),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn fixup_removes_duplicates_and_keeps_order() {
        let input = [
            acl(Perms::READ, "ip", "1.2.3.4"),
            acl(Perms::ALL, "world", "anyone"),
            acl(Perms::READ, "ip", "1.2.3.4"),
        ];
        assert_eq!(fixup(&config(), &[], &input).unwrap(), input[..2].to_vec());
    }

    #[test]
    fn fixup_expands_auth_to_authenticated_identities_only() {
        let me = [Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        let fixed = fixup(&config(), &me, &Acl::creator_all()).unwrap();
        assert_eq!(fixed, vec![acl(Perms::ALL, "digest", "u:h")]);
        assert_eq!(
            fixup(&config(), &me[..1], &Acl::creator_all()),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn fixup_rejects_empty_lists_and_unknown_or_malformed_ids() {
        assert_eq!(fixup(&config(), &[], &[]), Err(ErrorCode::InvalidAcl));
        for bad in [
            acl(Perms::ALL, "world", "somebody"),
            acl(Perms::ALL, "super", ""),
            acl(Perms::ALL, "digest", "nohash"),
            acl(Perms::ALL, "ip", "300.0.0.1"),
            acl(Perms::ALL, "sasl", "u"),
        ] {
            assert_eq!(
                fixup(&config(), &[], std::slice::from_ref(&bad)),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn get_acl_masking_hides_digest_hashes_only() {
        let input = [
            acl(Perms::ALL, "digest", "alice:hash"),
            acl(Perms::READ, "ip", "1.2.3.4"),
        ];
        let masked = mask_digests(&input);
        assert_eq!(masked[0].id.id, "alice:x");
        assert_eq!(masked[1], input[1]);
    }

    #[test]
    fn who_am_i_lists_identities_in_java_hash_set_order() {
        let digest = |up: &str| Id::new("digest", generate_digest(up));
        let ip = Id::new("ip", "127.0.0.1");
        let names = |auth: &[Id]| -> Vec<(String, String)> {
            client_infos(auth)
                .into_iter()
                .map(|i| (i.auth_scheme, i.user))
                .collect()
        };
        // Captured from Apache 3.8.0 (zkCli `addauth digest u:p`, whoami).
        assert_eq!(
            names(&[ip.clone(), digest("u:p")]),
            [
                ("ip".into(), "127.0.0.1".into()),
                ("digest".into(), "u".into())
            ]
        );
        // Observed by the differential tests: alice's digest comes first.
        assert_eq!(
            names(&[ip, digest("alice:secret")]),
            [
                ("digest".into(), "alice".into()),
                ("ip".into(), "127.0.0.1".into())
            ]
        );
    }

    #[test]
    fn java_hashes_match_the_jvm() {
        // "hello".hashCode() == 99162322; Id("world","anyone") as jute hashes it.
        assert_eq!(string_hash("hello"), 99_162_322);
        assert_eq!(java_id_hash(&Id::new("a", "b")), (17 * 37 + 97) * 37 + 98);
    }
}
