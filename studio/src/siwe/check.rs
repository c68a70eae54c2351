//! What a parsed message must say to sign in here: pure checks, the clock passed in.

use std::time::SystemTime;

use super::message::Message;
use crate::{Error, Result};

/// What this node expects of a sign-in message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The RFC 3986 authority the message's `domain` must equal (`--studio-domain`).
    pub domain: String,
    /// The chain the message's `Chain ID` must name: the deployment's.
    pub chain_id: u64,
}

impl Expected {
    /// Checks, in this order, the domain (exactly, as written), the chain id, that `now` is before the Expiration
    /// Time and at or after Not Before. The scheme and the Issued At time are not checked: the wallet checks the
    /// scheme against the page's origin, and the one-time nonce's short life bounds when a message can be made.
    pub fn check(&self, message: &Message, now: SystemTime) -> Result<()> {
        if message.domain != self.domain {
            return Err(Error::Domain {
                expected: self.domain.clone(),
                found: message.domain.clone(),
            });
        }
        if message.chain_id != self.chain_id {
            return Err(Error::Chain { expected: self.chain_id, found: message.chain_id });
        }
        if message.expiration_time.as_ref().is_some_and(|t| t.is_reached(now)) {
            return Err(Error::Expired);
        }
        if message.not_before.as_ref().is_some_and(|t| !t.is_reached(now)) {
            return Err(Error::NotYetValid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::siwe::time::DateTime;

    fn message() -> Message {
        Message::parse(
            "studio.example wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2


URI: https://studio.example/studio
Version: 1
Chain ID: 31337
Nonce: abcdefgh12345678
Issued At: 2021-09-30T16:25:24Z
Expiration Time: 2021-09-30T16:35:24Z
Not Before: 2021-09-30T16:25:00Z",
        )
        .unwrap()
    }

    fn at(rfc3339: &str) -> SystemTime {
        let nanos = DateTime::parse(rfc3339).unwrap().unix_nanos();
        SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    }

    #[test]
    fn checks_domain_chain_and_validity_window() {
        let expected = Expected { domain: "studio.example".into(), chain_id: 31337 };
        let m = message();
        expected.check(&m, at("2021-09-30T16:25:00Z")).unwrap();
        expected.check(&m, at("2021-09-30T16:35:23.999Z")).unwrap();
        assert!(matches!(expected.check(&m, at("2021-09-30T16:35:24Z")), Err(Error::Expired)));
        assert!(matches!(
            expected.check(&m, at("2021-09-30T16:24:59.999Z")),
            Err(Error::NotYetValid)
        ));

        let other_domain = Expected { domain: "studio.example:443".into(), ..expected.clone() };
        assert!(matches!(
            other_domain.check(&m, at("2021-09-30T16:30:00Z")),
            Err(Error::Domain { found, .. }) if found == "studio.example"
        ));
        let other_chain = Expected { chain_id: 1, ..expected };
        assert!(matches!(
            other_chain.check(&m, at("2021-09-30T16:30:00Z")),
            Err(Error::Chain { expected: 1, found: 31337 })
        ));
    }
}
