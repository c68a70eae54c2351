// Paths of the repository the tests read (docs/vectors, docs/schema.graphql), from the compiled test's place.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** clients/ts. */
export const PKG = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository's root. */
export const REPO = join(PKG, "..", "..");
