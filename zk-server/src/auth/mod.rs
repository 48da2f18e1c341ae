//! SASL authentication as Apache's server offers it: the JAAS `Server`
//! section names the users (`jaas.rs`), and clients prove a password with
//! DIGEST-MD5 (`digest_md5.rs`). A success adds the identity
//! `sasl:<user>` to the connection (ACL scheme `sasl`).

pub mod digest_md5;
pub mod jaas;
