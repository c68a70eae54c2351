//! Sign-In with Ethereum (EIP-4361): the message ([`Message`], parsed strictly by the EIP's ABNF), its times
//! ([`DateTime`], RFC 3339), the RFC 3986 syntax it is built from, and the checks of a parsed message against what
//! this node expects ([`Expected::check`], pure).

mod check;
mod message;
mod rfc3986;
mod time;

pub use check::Expected;
pub use message::Message;
pub(crate) use rfc3986::is_authority;
pub use time::DateTime;
