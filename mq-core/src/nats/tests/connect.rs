use std::string::String;

use crate::nats::connect::{ConnectError, ConnectOptions, ServerInfo};

#[test]
fn what_async_nats_sends() {
    let json = r#"{"verbose":false,"pedantic":false,"user_jwt":null,"nkey":null,"signature":null,"name":"app","echo":true,"lang":"rust","version":"0.42.0","protocol":1,"tls_required":false,"user":null,"pass":null,"auth_token":"s3cret","headers":true,"no_responders":true}"#;
    let o = ConnectOptions::parse(json).unwrap();
    assert!(!o.verbose && !o.pedantic && o.echo && o.headers && o.no_responders);
    assert_eq!(o.name, Some("app"));
    assert_eq!(o.secret(), Some("s3cret"));
}

#[test]
fn missing_fields_keep_nats_servers_defaults() {
    let o = ConnectOptions::parse("{}").unwrap();
    assert!(o.verbose && o.pedantic && o.echo && !o.headers && !o.no_responders);
    assert_eq!(o, ConnectOptions::default());
    let o = ConnectOptions::parse(r#" {"user":"u","pass":"p"} "#).unwrap();
    assert_eq!(o.secret(), Some("p"));
    let o = ConnectOptions::parse(r#"{"user":"u","nested":{"a":[1,2]}}"#).unwrap();
    assert_eq!(o.secret(), Some("u"));
}

#[test]
fn bad_json_is_refused() {
    assert_eq!(ConnectOptions::parse("{bad json"), Err(ConnectError::Json));
    assert_eq!(
        ConnectOptions::parse(r#"{"verbose":"yes"}"#),
        Err(ConnectError::Json)
    );
    assert_eq!(ConnectOptions::parse("{} x"), Err(ConnectError::Json));
}

#[test]
fn info_is_json() {
    let info = ServerInfo {
        server_id: "mqd-1",
        server_name: "mqd",
        version: "0.1.0",
        max_payload: 1024,
        auth_required: false,
        client_id: 7,
    };
    let mut s = String::new();
    info.write_json(&mut s).unwrap();
    assert!(s.starts_with('{') && s.ends_with('}'));
    assert!(s.contains("\"max_payload\":1024"));
    assert!(s.contains("\"headers\":true"));
    assert!(s.contains("\"client_id\":7"));
}
