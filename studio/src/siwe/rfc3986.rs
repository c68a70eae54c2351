//! The pieces of RFC 3986 that an EIP-4361 message is made of: URIs, authorities, schemes, and the character sets
//! of its statement and request id. Checks only; nothing is normalised.

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`.
const fn is_sub_delim(b: u8) -> bool {
    matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// `gen-delims = ":" / "/" / "?" / "#" / "[" / "]" / "@"`.
const fn is_gen_delim(b: u8) -> bool {
    matches!(b, b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@')
}

/// Whether every byte of `s` is allowed by `allowed` or starts a complete `pct-encoded` (`"%" HEXDIG HEXDIG`), when
/// `percent` is set.
fn chars(s: &str, percent: bool, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if percent && b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"`, without the `pct-encoded`.
const fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
pub(crate) fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// `authority = [ userinfo "@" ] host [ ":" port ]`.
pub(crate) fn is_authority(s: &str) -> bool {
    let (userinfo, host_port) = match s.split_once('@') {
        Some((userinfo, rest)) => (Some(userinfo), rest),
        None => (None, s),
    };
    // userinfo = *( unreserved / pct-encoded / sub-delims / ":" )
    if let Some(userinfo) = userinfo
        && !chars(userinfo, true, |b| is_unreserved(b) || is_sub_delim(b) || b == b':')
    {
        return false;
    }
    let (host, port) = if let Some(literal) = host_port.strip_prefix('[') {
        let Some((inside, rest)) = literal.split_once(']') else { return false };
        if !is_ip_literal(inside) {
            return false;
        }
        match rest {
            "" => return true,
            _ => match rest.strip_prefix(':') {
                Some(port) => ("", port),
                None => return false,
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, port),
            None => (host_port, ""),
        }
    };
    // reg-name = *( unreserved / pct-encoded / sub-delims ), of which IPv4address is a part; port = *DIGIT
    chars(host, true, |b| is_unreserved(b) || is_sub_delim(b))
        && port.bytes().all(|b| b.is_ascii_digit())
}

/// The inside of `IP-literal = "[" ( IPv6address / IPvFuture ) "]"`.
fn is_ip_literal(s: &str) -> bool {
    // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
    if let Some(future) = s.strip_prefix(['v', 'V']) {
        let Some((version, rest)) = future.split_once('.') else { return false };
        return !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_hexdigit())
            && !rest.is_empty()
            && chars(rest, false, |b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// `URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]`.
pub(crate) fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    if !is_scheme(scheme) {
        return false;
    }
    // query = fragment = *( pchar / "/" / "?" )
    let query_char = |b: u8| is_pchar(b) || b == b'/' || b == b'?';
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (hier, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !chars(fragment, true, query_char) || !chars(query, true, query_char) {
        return false;
    }
    let path = match hier.strip_prefix("//") {
        // "//" authority path-abempty: the path is empty or starts with "/".
        Some(after) => {
            let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
            if !is_authority(authority) {
                return false;
            }
            path
        }
        // path-absolute / path-rootless / path-empty: never "//" first (that would be an authority).
        None => hier,
    };
    chars(path, true, |b| is_pchar(b) || b == b'/')
}

/// `statement = *( reserved / unreserved / " " )` (EIP-4361): printable ASCII without `"`, `%`, `<`, `>`, `\`, `^`,
/// `` ` ``, `{`, `|`, `}`, and never a line break.
pub(crate) fn is_statement(s: &str) -> bool {
    chars(s, false, |b| is_unreserved(b) || is_gen_delim(b) || is_sub_delim(b) || b == b' ')
}

/// `request-id = *pchar` (EIP-4361).
pub(crate) fn is_request_id(s: &str) -> bool {
    chars(s, true, is_pchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        for ok in [
            "https://example.com/login",
            "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
            "https://example.com/my-web2-claim.json",
            "http://127.0.0.1:8080",
            "http://[::1]:8080/studio?x=1#top",
            "urn:isbn:0451450523",
            "mailto:artist@example.com",
            "did:pkh:eip155:1:0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
            "https://user:pw@example.com/%20a",
            "x:",
        ] {
            assert!(is_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "example.com/login",
            "1http://x",
            "https://exa mple.com",
            "https://example.com/%2",
            "https://example.com/%zz",
            "https://[::g]/",
            "https://exa<mple.com",
            "https://example.com:80a/",
            "https://example.com/\"",
            "https://example.com/é",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
    }

    #[test]
    fn authorities() {
        for ok in
            ["example.com", "example.com:3388", "127.0.0.1:8080", "[::1]:80", "u@host", "localhost"]
        {
            assert!(is_authority(ok), "{ok}");
        }
        for bad in ["exa mple.com", "host:port", "[::1", "a@b@c", "host/path", "[::1]x"] {
            assert!(!is_authority(bad), "{bad}");
        }
    }

    #[test]
    fn statements_are_reserved_unreserved_and_spaces() {
        assert!(is_statement("I accept the ExampleOrg Terms of Service: https://example.com/tos"));
        assert!(is_statement(""));
        for bad in ["line\nbreak", "100%", "\"quoted\"", "a{b}", "tab\there", "é"] {
            assert!(!is_statement(bad), "{bad}");
        }
    }
}
