/** Stable error codes of the relay (docs/PROTOCOL.md "Error codes"), the studio (docs/STUDIO.md) and the SDK. */

/** Every `error.code` the relay sends. */
export const RELAY_ERROR_CODES = [
  "malformed_frame",
  "unknown_type",
  "invalid_field",
  "frame_too_large",
  "rate_limited",
  "hello_required",
  "duplicate_hello",
  "invalid_grant",
  "bad_grant_signature",
  "grant_expired",
  "grant_revoked",
  "insufficient_funds",
  "unknown_track",
  "audio_mismatch",
  "audio_unavailable",
  "unknown_session",
  "wrong_grant",
  "invalid_signature",
  "malleable_signature",
  "wrong_signer",
  "stale_voucher",
  "exceeds_owed",
  "cap_exceeded",
  "message_too_long",
  "duplicate_tip",
  "unknown_payee",
  "too_many_sessions",
  "chain_unavailable",
  "storage_unavailable",
  "yellow_disabled",
  "invalid_app_session",
  "wrong_version",
  "allocation_mismatch",
  "wrong_amount",
  "node_refused",
  "node_unavailable",
] as const;

/** A code the relay sends in an `error` frame. */
export type RelayErrorCode = (typeof RELAY_ERROR_CODES)[number];

/**
 * Codes the SDK raises itself: `connection_lost` (the socket closed while a request waited), `cap_reached` (paying
 * the next beat would take the grant's vouchers past its cap, so the SDK did not sign), `closed` (the client was
 * closed), `timeout` (no answer in time).
 */
export type ClientErrorCode = "connection_lost" | "cap_reached" | "closed" | "timeout";

/** An error from the relay (by its stable code) or from the SDK's side of the connection. */
export class RelayError extends Error {
  override readonly name = "RelayError";
  constructor(
    /** The stable code: match on it, never on the message. */
    readonly code: RelayErrorCode | ClientErrorCode | (string & {}),
    message: string,
  ) {
    super(message);
  }
}

/** Relay codes after which the grant itself is no good: the client stops and does not reconnect. */
export const FATAL_GRANT_CODES: ReadonlySet<string> = new Set([
  "invalid_grant",
  "bad_grant_signature",
  "grant_expired",
  "grant_revoked",
]);

/** Codes the relay only sends about a voucher. */
export const VOUCHER_CODES: ReadonlySet<string> = new Set([
  "wrong_grant",
  "invalid_signature",
  "malleable_signature",
  "wrong_signer",
  "stale_voucher",
  "exceeds_owed",
  "cap_exceeded",
  "insufficient_funds",
]);

/** Codes the relay only sends about a tip. */
export const TIP_CODES: ReadonlySet<string> = new Set(["message_too_long", "duplicate_tip", "unknown_payee"]);

/**
 * Codes the relay may send about a tip as well as a voucher (or any frame): while a tip waits for its answer and no
 * voucher is unanswered, they are the tip's.
 */
export const TIP_SHARED_CODES: ReadonlySet<string> = new Set([
  "invalid_field",
  "wrong_grant",
  "invalid_signature",
  "malleable_signature",
  "wrong_signer",
  "cap_exceeded",
  "insufficient_funds",
  "grant_expired",
  "grant_revoked",
  "hello_required",
  "rate_limited",
  "frame_too_large",
  "storage_unavailable",
]);

/** A refusal of the studio: its JSON `{"error": {"code", "message"}}` and the HTTP status. */
export class StudioError extends Error {
  override readonly name = "StudioError";
  constructor(
    /** The stable code of docs/STUDIO.md "Errors" (`siwe_nonce`, `not_manager`, `audio_corrupt`, ...). */
    readonly code: string,
    message: string,
    /** The HTTP status. */
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * Why a track's audio cannot be trusted or played (docs/PROTOCOL.md "What a player verifies"):
 * `manifest_invalid` (fields or root do not check), `manifest_mismatch` (not the on-chain `contentHash` or
 * `duration`), `chunk_mismatch` (a chunk's keccak256 is not its leaf), `decrypt_failed` (wrong key, index or bytes),
 * `fetch_failed` (HTTP).
 */
export type AudioErrorCode =
  | "manifest_invalid"
  | "manifest_mismatch"
  | "chunk_mismatch"
  | "decrypt_failed"
  | "fetch_failed";

/** An audio verification or fetch failure. */
export class AudioError extends Error {
  override readonly name = "AudioError";
  constructor(
    readonly code: AudioErrorCode,
    message: string,
  ) {
    super(message);
  }
}
