//! BeatStream studio: artists sign in with Ethereum (EIP-4361) and upload tracks; encrypted chunks are served over
//! HTTP. See docs/PROTOCOL.md "Audio".
