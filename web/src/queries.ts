// The app's own queries where the SDK's are bigger than a page needs: the SDK's `Artists` (50 artists × 100
// tracks with their stats) is over the API's default complexity limit (20,000) and is refused.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';

interface Amount {
  raw: string;
}

/** An artist with its published catalogue, as the listener's page lists it. */
export interface CatalogueArtist {
  name: string;
  label: string;
  node: string;
  address: string | null;
  ratePerSecond: Amount;
  texts: Array<{ key: string; value: string }>;
  tracks: {
    edges: Array<{
      node: { id: string; title: string; duration: number; contentHash: string; published: boolean; ratePerSecond: Amount; stats: { streams: number } };
    }>;
  };
}

/** The first 20 artists by name with their first 20 tracks each. */
export const CatalogueDocument = parse(`
  query Catalogue {
    artists(first: 20) {
      edges {
        node {
          name
          label
          node
          address
          ratePerSecond { raw }
          texts { key value }
          tracks(first: 20) { edges { node { id title duration contentHash published ratePerSecond { raw } stats { streams } } } }
        }
      }
    }
  }
`) as TypedDocumentNode<{ artists: { edges: Array<{ node: CatalogueArtist }> } }, Record<string, never>>;
