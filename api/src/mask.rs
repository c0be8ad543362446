//! Masks secrets in text the API shows (run and step errors, log messages):
//! step errors quote upstream messages, which can carry connection URLs
//! with passwords, `password=…` connection strings, or bearer tokens.

const MASK: &str = "***";

/// Keywords whose value (`key=value`, `key: value`, `"key": "value"`) is a
/// secret. Matched at the end of a word, so `client_secret` and
/// `access_token` are caught too.
const SECRET_KEYS: &[&str] = &[
    "password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key",
];

fn is_value_end(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'&' | b';' | b',' | b'"' | b'\'' | b')' | b'}' | b']')
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

pub fn mask_secrets(input: &str) -> String {
    let bytes = input.as_bytes();
    let lower = input.to_ascii_lowercase();
    let lower = lower.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some((skip, replacement)) = secret_at(input, lower, i) {
            out.push_str(&replacement);
            i += skip;
            continue;
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// If a secret starts at byte `i`, how many bytes it spans and what to
/// write instead.
fn secret_at(input: &str, lower: &[u8], i: usize) -> Option<(usize, String)> {
    let bytes = input.as_bytes();
    // scheme://user:password@host
    if lower[i..].starts_with(b"://") {
        let start = i + 3;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?' || b == b'#' || is_value_end(b))
            .map_or(bytes.len(), |p| start + p);
        let authority = &input[start..end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}"),
                None => MASK.to_owned(),
            };
            return Some((3 + at, format!("://{masked}")));
        }
        return None;
    }
    // Authorization schemes: "Bearer <token>", "Basic <credentials>".
    for scheme in [&b"bearer "[..], &b"basic "[..]] {
        if lower[i..].starts_with(scheme) && (i == 0 || !is_word(lower[i - 1])) {
            let start = i + scheme.len();
            let end = value_end(bytes, start, None);
            if end > start {
                return Some((end - i, format!("{}{MASK}", &input[i..start])));
            }
        }
    }
    // Landlord's own API tokens.
    if lower[i..].starts_with(b"ll_") && (i == 0 || !is_word(lower[i - 1])) {
        let end = bytes[i + 3..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .map_or(bytes.len(), |p| i + 3 + p);
        if end - i >= 20 {
            return Some((end - i, format!("ll_{MASK}")));
        }
    }
    // key=value, key: value, "key": "value"
    for key in SECRET_KEYS {
        if !lower[i..].starts_with(key.as_bytes()) {
            continue;
        }
        let mut j = i + key.len();
        if j < bytes.len() && is_word(lower[j]) {
            continue;
        }
        if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
            j += 1;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || !(bytes[j] == b'=' || bytes[j] == b':') {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let quote = (j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'')).then(|| bytes[j]);
        if quote.is_some() {
            j += 1;
        }
        let end = value_end(bytes, j, quote);
        if end == j {
            continue;
        }
        return Some((end - i, format!("{}{MASK}", &input[i..j])));
    }
    None
}

fn value_end(bytes: &[u8], start: usize, quote: Option<u8>) -> usize {
    let stop = |b: u8| match quote {
        Some(q) => b == q,
        None => is_value_end(b),
    };
    bytes[start..]
        .iter()
        .position(|&b| stop(b))
        .map_or(bytes.len(), |p| start + p)
}

pub fn mask_opt(s: Option<&str>) -> Option<String> {
    s.map(mask_secrets)
}

#[cfg(test)]
mod tests {
    use super::mask_secrets as m;

    #[test]
    fn url_passwords() {
        assert_eq!(
            m("error connecting to postgres://admin:s3cr3t@db:5432/x: refused"),
            "error connecting to postgres://admin:***@db:5432/x: refused"
        );
        assert_eq!(
            m("mongodb://u:p%40ss@h1,h2/?authSource=admin"),
            "mongodb://u:***@h1,h2/?authSource=admin"
        );
        assert_eq!(m("https://tok@github.com/x"), "https://***@github.com/x");
        assert_eq!(m("see http://host/path@x"), "see http://host/path@x");
    }

    #[test]
    fn key_values() {
        assert_eq!(
            m("host=db user=x password=hunter2 dbname=y"),
            "host=db user=x password=*** dbname=y"
        );
        assert_eq!(m("PASSWORD: hunter2"), "PASSWORD: ***");
        assert_eq!(
            m(r#"{"client_secret":"abc def","ok":1}"#),
            r#"{"client_secret":"***","ok":1}"#
        );
        assert_eq!(m("?access_token=abc&x=1"), "?access_token=***&x=1");
        assert_eq!(m("password reset failed"), "password reset failed");
        assert_eq!(m("passwords=1"), "passwords=1");
    }

    #[test]
    fn tokens() {
        assert_eq!(
            m("Authorization: Bearer eyJhbGciOi.J9.x-y_z"),
            "Authorization: Bearer ***"
        );
        assert_eq!(m("basic dXNlcjpwYXNz"), "basic ***");
        assert_eq!(
            m("token ll_abcdefghijklmnopqrstuvwxyz0123 leaked"),
            "token ll_*** leaked"
        );
    }

    #[test]
    fn unicode_survives() {
        assert_eq!(m("äöü password=ü€ ok"), "äöü password=*** ok");
        assert_eq!(m("日本語"), "日本語");
    }
}
