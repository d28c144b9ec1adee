//! The web console: static files built into the binary (no build step, no
//! framework), served at `/`. The page polls the admin API (`/api/...`) and
//! draws topics, sessions and a plot of message rates; its purge and delete
//! buttons send the admin token typed into it.

/// The file for `path`: its content type and bytes.
pub fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX.as_bytes()),
        "/console.js" => ("text/javascript; charset=utf-8", SCRIPT.as_bytes()),
        "/console.css" => ("text/css; charset=utf-8", STYLE.as_bytes()),
        _ => return None,
    })
}

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_files_that_are_served() {
        let (_, page) = file("/").unwrap();
        let page = std::str::from_utf8(page).unwrap();
        for asset in ["/console.js", "/console.css"] {
            assert!(page.contains(asset), "{asset}");
            assert!(file(asset).is_some(), "{asset}");
        }
        assert!(file("/etc/passwd").is_none());
    }
}
