//! BeatStream audio: probe an uploaded file, cut it into chunks a browser plays back to back, encrypt each chunk
//! under its own key and commit to the ciphertexts in the root recorded on-chain. See docs/PROTOCOL.md "Audio".
