//! The web console: static files built into the binary, served at `/`.

/// The file for `path`: its content type and bytes.
pub fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX.as_bytes()),
        _ => return None,
    })
}

const INDEX: &str = "<!doctype html><title>mq</title><p>mq console\n";
