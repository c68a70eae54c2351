//! The EIP-4361 message: parsed strictly by its ABNF, and written back exactly as parsed.

use std::fmt;

use alloy::primitives::Address;

use super::{rfc3986, time::DateTime};
use crate::{Error, Result};

/// What follows the origin on the first line.
const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

/// A Sign-In with Ethereum message (EIP-4361). [`Message::parse`] accepts exactly the ABNF of the EIP; `Display`
/// writes the same text back, so `parse(m.to_string()) == m` and the signed bytes are the printed ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The origin's URI scheme, when the message names one (`https://example.com wants you ...`).
    pub scheme: Option<String>,
    /// The RFC 3986 authority asking for the signature (`example.com`, `127.0.0.1:8080`).
    pub domain: String,
    /// The signing account, EIP-55 checksummed in the text.
    pub address: Address,
    /// The human-readable assertion; `Some("")` for the empty statement line, `None` when there is none.
    pub statement: Option<String>,
    /// The RFC 3986 URI that is the subject of the signing.
    pub uri: String,
    /// EIP-155 chain id the session is bound to.
    pub chain_id: u64,
    /// At least eight letters and digits, chosen by the relying party.
    pub nonce: String,
    /// When the message was made.
    pub issued_at: DateTime,
    /// When the message stops being valid.
    pub expiration_time: Option<DateTime>,
    /// When the message starts being valid.
    pub not_before: Option<DateTime>,
    /// A system-specific id of the request.
    pub request_id: Option<String>,
    /// The `Resources:` list, `Some(vec![])` for the heading alone.
    pub resources: Option<Vec<String>>,
}

impl Message {
    /// Parses `text` by the ABNF of EIP-4361: lines separated by LF only, no trailing line break, fields in their
    /// order, the address EIP-55 checksummed, version 1. The error names the first thing that does not conform.
    pub fn parse(text: &str) -> Result<Self> {
        if text.ends_with('\n') {
            return Err(malformed(
                "the message ends with a line break: it must end with its last field",
            ));
        }
        let mut lines = Lines { inner: text.split('\n').peekable(), number: 0 };

        let first = lines.next("the first line")?;
        let origin = first.strip_suffix(PREAMBLE).ok_or_else(|| {
            malformed(format!("the first line must end with {:?}", PREAMBLE.trim_start()))
        })?;
        let (scheme, domain) = match origin.split_once("://") {
            Some((scheme, domain)) => {
                if !rfc3986::is_scheme(scheme) {
                    return Err(malformed(format!("{scheme:?} is not a URI scheme")));
                }
                (Some(scheme.to_owned()), domain)
            }
            None => (None, origin),
        };
        if domain.is_empty() || !rfc3986::is_authority(domain) {
            return Err(malformed(format!("{domain:?} is not an RFC 3986 authority")));
        }

        let address = lines.next("the address")?;
        if address.len() != 42
            || !address.starts_with("0x")
            || !address[2..].bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(malformed("the second line must be an address: 0x and 40 hex digits"));
        }
        let address = Address::parse_checksummed(address, None).map_err(|_| {
            malformed("the address is not EIP-55 checksummed (mixed case, as wallets write it)")
        })?;

        lines.blank("after the address")?;
        // `[ statement LF ] LF`: a non-empty line is the statement; an empty one is either the blank line before
        // `URI:` (no statement) or, followed by another empty line, an empty statement.
        let statement = match lines.next("the statement or a blank line")? {
            "" if lines.peek() == Some("") => {
                lines.blank("after the statement")?;
                Some(String::new())
            }
            "" => None,
            statement => {
                if !rfc3986::is_statement(statement) {
                    return Err(malformed(
                        "the statement may hold only RFC 3986 reserved and unreserved characters and spaces",
                    ));
                }
                lines.blank("after the statement")?;
                Some(statement.to_owned())
            }
        };

        let uri = lines.field("URI: ")?;
        if !rfc3986::is_uri(uri) {
            return Err(malformed(format!("URI {uri:?} is not an RFC 3986 URI")));
        }
        if lines.field("Version: ")? != "1" {
            return Err(malformed("the version must be 1"));
        }
        let chain_id = lines.field("Chain ID: ")?;
        let chain_id = (!chain_id.is_empty() && chain_id.bytes().all(|b| b.is_ascii_digit()))
            .then(|| chain_id.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| {
                malformed(format!("chain id {chain_id:?} is not a number below 2^64"))
            })?;
        let nonce = lines.field("Nonce: ")?;
        if nonce.len() < 8 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(malformed("the nonce must be at least 8 letters and digits"));
        }
        let issued_at = date_time("Issued At", lines.field("Issued At: ")?)?;

        let expiration_time = match lines.optional("Expiration Time: ") {
            Some(t) => Some(date_time("Expiration Time", t)?),
            None => None,
        };
        let not_before = match lines.optional("Not Before: ") {
            Some(t) => Some(date_time("Not Before", t)?),
            None => None,
        };
        let request_id = match lines.optional("Request ID: ") {
            Some(id) if rfc3986::is_request_id(id) => Some(id.to_owned()),
            Some(_) => {
                return Err(malformed("the request id may hold only RFC 3986 pchar characters"));
            }
            None => None,
        };
        let resources = if lines.peek() == Some("Resources:") {
            lines.next("Resources:")?;
            let mut resources = Vec::new();
            while let Some(line) = lines.peek() {
                let resource = line.strip_prefix("- ").ok_or_else(|| {
                    malformed(format!(
                        "line {}: a resource must be written \"- <URI>\"",
                        lines.number + 1
                    ))
                })?;
                if !rfc3986::is_uri(resource) {
                    return Err(malformed(format!("resource {resource:?} is not an RFC 3986 URI")));
                }
                resources.push(resource.to_owned());
                lines.next("a resource")?;
            }
            Some(resources)
        } else {
            None
        };
        if let Some(line) = lines.peek() {
            return Err(malformed(format!(
                "line {}: {line:?} is not expected here (the optional fields are Expiration Time, Not Before, \
                 Request ID and Resources, in that order, and the message ends without a line break)",
                lines.number + 1
            )));
        }

        Ok(Self {
            scheme,
            domain: domain.to_owned(),
            address,
            statement,
            uri: uri.to_owned(),
            chain_id,
            nonce: nonce.to_owned(),
            issued_at,
            expiration_time,
            not_before,
            request_id,
            resources,
        })
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        writeln!(f, "{}{PREAMBLE}", self.domain)?;
        writeln!(f, "{}", self.address.to_checksum(None))?;
        writeln!(f)?;
        if let Some(statement) = &self.statement {
            writeln!(f, "{statement}")?;
        }
        writeln!(f)?;
        writeln!(f, "URI: {}", self.uri)?;
        writeln!(f, "Version: 1")?;
        writeln!(f, "Chain ID: {}", self.chain_id)?;
        writeln!(f, "Nonce: {}", self.nonce)?;
        write!(f, "Issued At: {}", self.issued_at)?;
        if let Some(t) = &self.expiration_time {
            write!(f, "\nExpiration Time: {t}")?;
        }
        if let Some(t) = &self.not_before {
            write!(f, "\nNot Before: {t}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "\nRequest ID: {id}")?;
        }
        if let Some(resources) = &self.resources {
            write!(f, "\nResources:")?;
            for r in resources {
                write!(f, "\n- {r}")?;
            }
        }
        Ok(())
    }
}

fn malformed(why: impl Into<String>) -> Error {
    Error::Malformed(why.into())
}

fn date_time(field: &str, text: &str) -> Result<DateTime> {
    DateTime::parse(text)
        .ok_or_else(|| malformed(format!("{field} {text:?} is not an RFC 3339 date-time")))
}

/// The message's lines, counted for errors.
struct Lines<'a> {
    inner: std::iter::Peekable<std::str::Split<'a, char>>,
    number: usize,
}

impl<'a> Lines<'a> {
    fn peek(&mut self) -> Option<&'a str> {
        self.inner.peek().copied()
    }

    fn next(&mut self, expected: &str) -> Result<&'a str> {
        self.number += 1;
        self.inner.next().ok_or_else(|| {
            malformed(format!(
                "the message ends at line {} where {expected} should be",
                self.number
            ))
        })
    }

    fn blank(&mut self, after: &str) -> Result<()> {
        match self.next(&format!("a blank line {after}"))? {
            "" => Ok(()),
            _ => Err(malformed(format!("line {} must be blank ({after})", self.number))),
        }
    }

    /// The value of the line `<name><value>`, which must come next.
    fn field(&mut self, name: &str) -> Result<&'a str> {
        let line = self.next(&format!("{:?}", name.trim_end()))?;
        line.strip_prefix(name).ok_or_else(|| {
            malformed(format!("line {} must start with {:?}", self.number, name.trim_end()))
        })
    }

    /// The value of the line `<name><value>` if it comes next.
    fn optional(&mut self, name: &str) -> Option<&'a str> {
        let value = self.peek()?.strip_prefix(name)?;
        self.inner.next();
        self.number += 1;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::address;
    use proptest::prelude::*;

    use super::*;

    /// The first example of EIP-4361 ("an example SIWE Message with an implicit scheme").
    const SPEC_EXAMPLE: &str = "example.com wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json";

    fn malformed_because(text: &str) -> String {
        match Message::parse(text) {
            Err(Error::Malformed(why)) => why,
            other => panic!("expected a malformed message, got {other:?} for\n{text}"),
        }
    }

    #[test]
    fn parses_the_spec_example() {
        let m = Message::parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(m.scheme, None);
        assert_eq!(m.domain, "example.com");
        assert_eq!(m.address, address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"));
        assert_eq!(
            m.statement.as_deref(),
            Some("I accept the ExampleOrg Terms of Service: https://example.com/tos")
        );
        assert_eq!(m.uri, "https://example.com/login");
        assert_eq!(m.chain_id, 1);
        assert_eq!(m.nonce, "32891756");
        assert_eq!(m.issued_at.unix_seconds(), 1_633_019_124);
        assert_eq!(m.expiration_time, None);
        assert_eq!(m.not_before, None);
        assert_eq!(m.request_id, None);
        assert_eq!(
            m.resources,
            Some(vec![
                "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/".to_owned(),
                "https://example.com/my-web2-claim.json".to_owned(),
            ])
        );
        assert_eq!(m.to_string(), SPEC_EXAMPLE);
    }

    #[test]
    fn parses_the_spec_examples_with_a_port_and_a_scheme() {
        let port = SPEC_EXAMPLE.replacen("example.com wants", "example.com:3388 wants", 1);
        assert_eq!(Message::parse(&port).unwrap().domain, "example.com:3388");
        let scheme = SPEC_EXAMPLE.replacen("example.com wants", "https://example.com wants", 1);
        let m = Message::parse(&scheme).unwrap();
        assert_eq!((m.scheme.as_deref(), m.domain.as_str()), (Some("https"), "example.com"));
        assert_eq!(m.to_string(), scheme);
    }

    #[test]
    fn parses_every_optional_field() {
        let text = "https://studio.example:8443 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2


URI: https://studio.example:8443/studio
Version: 1
Chain ID: 31337
Nonce: abcDEF1234567890
Issued At: 2023-02-01T00:00:00.000Z
Expiration Time: 2023-02-01T00:10:00.000Z
Not Before: 2023-02-01T00:00:00+01:00
Request ID: req-42:@!
Resources:";
        let m = Message::parse(text).unwrap();
        assert_eq!(m.statement, None);
        assert_eq!(m.chain_id, 31337);
        assert_eq!(m.expiration_time.as_ref().unwrap().unix_seconds(), 1_675_210_200);
        assert_eq!(m.not_before.as_ref().unwrap().unix_seconds(), 1_675_206_000);
        assert_eq!(m.request_id.as_deref(), Some("req-42:@!"));
        assert_eq!(m.resources, Some(vec![]));
        assert_eq!(m.to_string(), text);
    }

    #[test]
    fn an_empty_statement_is_its_own_line() {
        let text = SPEC_EXAMPLE.replacen(
            "I accept the ExampleOrg Terms of Service: https://example.com/tos\n",
            "\n",
            1,
        );
        let m = Message::parse(&text).unwrap();
        assert_eq!(m.statement.as_deref(), Some(""));
        assert_eq!(m.to_string(), text);
    }

    #[test]
    fn refuses_what_the_abnf_does_not_allow() {
        let cases: &[(&str, &str, &str)] = &[
            ("example.com wants", "example.com wishes", "must end with"),
            ("example.com wants", "exa mple.com wants", "authority"),
            ("example.com wants", " wants", "authority"),
            ("example.com wants", "1https://example.com wants", "scheme"),
            // EIP-55: the same address in lower case.
            (
                "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
                "EIP-55",
            ),
            (
                "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc",
                "40 hex",
            ),
            ("Cc2\n\nI accept", "Cc2\nI accept", "blank"),
            (
                "Terms of Service: https://example.com/tos\n\n",
                "Terms of Service: \"tos\"\n\n",
                "statement",
            ),
            ("tos\n\nURI", "tos\nURI", "blank"),
            ("URI: https://example.com/login", "URI: example.com/login", "not an RFC 3986 URI"),
            ("URI: https://example.com/login", "Uri: https://example.com/login", "URI"),
            ("Version: 1", "Version: 2", "version must be 1"),
            ("Chain ID: 1", "Chain ID: one", "chain id"),
            ("Chain ID: 1", "Chain ID: 18446744073709551616", "chain id"),
            ("Chain ID: 1", "Chain ID: -1", "chain id"),
            ("Nonce: 32891756", "Nonce: 3289175", "nonce"),
            ("Nonce: 32891756", "Nonce: 32891756-", "nonce"),
            ("Issued At: 2021-09-30T16:25:24Z", "Issued At: 2021-09-30 16:25:24", "RFC 3339"),
            ("Issued At: 2021-09-30T16:25:24Z\n", "", "Issued At"),
            ("- https://example.com/my", "-https://example.com/my", "resource"),
            ("- https://example.com/my", "- example.com/my", "resource"),
            ("my-web2-claim.json", "my-web2-claim.json\n", "line break"),
            (
                "Issued At: 2021-09-30T16:25:24Z",
                "Issued At: 2021-09-30T16:25:24Z\nRequest ID: x\nExpiration Time: 2021-09-30T17:25:24Z",
                "not expected",
            ),
        ];
        for (from, to, why) in cases {
            assert!(SPEC_EXAMPLE.contains(from), "{from}");
            let text = SPEC_EXAMPLE.replacen(from, to, 1);
            let got = malformed_because(&text);
            assert!(got.contains(why), "{from:?} -> {to:?}: {got:?} should mention {why:?}");
        }
        // Optional fields out of order, a CR LF message, a field twice, nothing at all.
        let nb_then_exp = SPEC_EXAMPLE.replacen(
            "Issued At: 2021-09-30T16:25:24Z\n",
            "Issued At: 2021-09-30T16:25:24Z\nNot Before: 2021-09-30T16:25:24Z\nExpiration Time: 2021-09-30T17:25:24Z\n",
            1,
        );
        assert!(malformed_because(&nb_then_exp).contains("not expected"));
        assert!(malformed_because(&SPEC_EXAMPLE.replace('\n', "\r\n")).contains("must end with"));
        let twice =
            SPEC_EXAMPLE.replacen("Nonce: 32891756\n", "Nonce: 32891756\nNonce: 32891756\n", 1);
        assert!(malformed_because(&twice).contains("Issued At"));
        assert!(malformed_because("").contains("must end with"));
    }

    /// The examples of `docs/STUDIO.md` are messages this node takes: the one in the JSON body of
    /// `POST /studio/siwe/verify` and the one in its own block.
    #[test]
    fn the_examples_in_the_docs_sign_in_on_a_dev_node() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/STUDIO.md"))
                .unwrap();
        let mut examples: Vec<String> = doc
            .split("```text\n")
            .skip(1)
            .map(|block| block.split("\n```").next().unwrap().to_owned())
            .filter(|block| !block.starts_with('['))
            .collect();
        let json = doc.split("\"message\": ").nth(1).unwrap().split(",\n").next().unwrap();
        examples.push(serde_json::from_str(json).unwrap());
        assert_eq!(examples.len(), 2, "{examples:?}");
        let expected = crate::siwe::Expected {
            domain: crate::config::DEFAULT_DOMAIN.to_owned(),
            chain_id: 31337,
        };
        for text in examples {
            let m = Message::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let issued = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(m.issued_at.unix_seconds() as u64);
            expected.check(&m, issued).unwrap();
            assert_eq!(m.to_string(), text);
        }
    }

    fn message() -> impl Strategy<Value = Message> {
        let date = (
            1970i64..2200,
            1i64..=12,
            1i64..=28,
            0i64..24,
            0i64..60,
            0i64..60,
            proptest::option::of(0u32..1000),
        )
            .prop_map(|(y, mo, d, h, mi, s, ms)| {
                let frac = ms.map(|ms| format!(".{ms:03}")).unwrap_or_default();
                DateTime::parse(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z"))
                    .unwrap()
            });
        (
            (
                proptest::option::of("[a-z][a-z0-9+.-]{0,8}"),
                "[a-z0-9-]{1,20}(\\.[a-z]{2,5})?(:[0-9]{1,5})?",
                any::<[u8; 20]>(),
                proptest::option::of("[A-Za-z0-9 :/?#@!$&'()*+,;=._~-]{0,60}"),
                "https://[a-z0-9.]{1,20}(/[a-z0-9._~-]{0,10}){0,3}",
                any::<u64>(),
                "[A-Za-z0-9]{8,40}",
            ),
            (
                date.clone(),
                proptest::option::of(date.clone()),
                proptest::option::of(date),
                proptest::option::of("[A-Za-z0-9:@!$&'()*+,;=._~-]{0,20}"),
                proptest::option::of(proptest::collection::vec(
                    "urn:[a-z]{1,8}:[a-z0-9]{1,8}",
                    0..4,
                )),
            ),
        )
            .prop_map(
                |(
                    (scheme, domain, address, statement, uri, chain_id, nonce),
                    (issued_at, expiration_time, not_before, request_id, resources),
                )| Message {
                    scheme,
                    domain,
                    address: Address::from(address),
                    statement,
                    uri,
                    chain_id,
                    nonce,
                    issued_at,
                    expiration_time,
                    not_before,
                    request_id,
                    resources,
                },
            )
    }

    proptest! {
        #[test]
        fn written_messages_parse_back_to_themselves(m in message()) {
            let text = m.to_string();
            prop_assert_eq!(Message::parse(&text).unwrap(), m);
        }
    }
}
