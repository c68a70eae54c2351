/**
 * A small GraphQL client for the node's API (docs/API.md): queries over `POST /graphql`, subscriptions over
 * `graphql-transport-ws` at `/graphql/ws` (graphql-ws), both typed by the document nodes in `generated.ts`.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { type Client, createClient } from "graphql-ws";
import type { Fetch } from "../audio.js";

/** A GraphQL error with the API's stable `extensions.code` (`BAD_USER_INPUT`, `NOT_FOUND`, `INTERNAL`). */
export class GraphQLRequestError extends Error {
  override readonly name = "GraphQLRequestError";
  constructor(
    readonly code: string,
    message: string,
    readonly errors: ReadonlyArray<{ message: string; extensions?: { code?: string } }> = [],
  ) {
    super(message);
  }
}

/** Options of {@link GraphQLClient}. */
export interface GraphQLClientOptions {
  /** `http://host:port/graphql`. */
  url: string;
  /** `ws://host:port/graphql/ws` (default: `url` with `ws` and `/ws`). */
  wsUrl?: string;
  fetch?: Fetch;
  /** The WebSocket implementation for subscriptions (default the global one; in Node 20 the `ws` package's). */
  webSocketImpl?: unknown;
}

/** Handlers of a subscription. */
export interface SubscriptionHandlers<T> {
  next: (data: T) => void;
  error?: (e: Error) => void;
  complete?: () => void;
}

type Errors = ReadonlyArray<{ message: string; extensions?: { code?: string } }>;

function toError(errors: Errors): GraphQLRequestError {
  const first = errors[0];
  return new GraphQLRequestError(first?.extensions?.code ?? "UNKNOWN", errors.map((e) => e.message).join("; "), errors);
}

/** Queries and subscriptions, typed by their documents. */
export class GraphQLClient {
  private readonly fetchFn: Fetch;
  private ws: Client | null = null;

  constructor(readonly options: GraphQLClientOptions) {
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Runs a query; throws {@link GraphQLRequestError} with the first error's code when the answer has errors. */
  async query<TData, TVars extends Record<string, unknown>>(document: TypedDocumentNode<TData, TVars>, variables?: TVars): Promise<TData> {
    const res = await this.fetchFn(this.options.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: print(document), variables: variables ?? {} }),
    });
    const body = (await res.json().catch(() => null)) as { data?: TData; errors?: Errors } | null;
    if (!body) throw new GraphQLRequestError("INTERNAL", `POST ${this.options.url}: ${res.status}`);
    if (body.errors?.length) throw toError(body.errors);
    if (!res.ok || body.data === undefined) throw new GraphQLRequestError("INTERNAL", `POST ${this.options.url}: ${res.status}`);
    return body.data;
  }

  private socket(): Client {
    if (!this.ws) {
      const wsUrl = this.options.wsUrl ?? `${this.options.url.replace(/^http/, "ws").replace(/\/$/, "")}/ws`;
      this.ws = createClient({ url: wsUrl, webSocketImpl: this.options.webSocketImpl, lazy: true, retryAttempts: 5 });
    }
    return this.ws;
  }

  /** Subscribes; returns the function that ends the subscription. */
  subscribe<TData, TVars extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVars>,
    variables: TVars,
    handlers: SubscriptionHandlers<TData>,
  ): () => void {
    return this.socket().subscribe<TData>(
      { query: print(document), variables },
      {
        next: (r) => {
          if (r.errors?.length) handlers.error?.(toError(r.errors as Errors));
          else if (r.data) handlers.next(r.data as TData);
        },
        error: (e) => handlers.error?.(e instanceof Error ? e : Array.isArray(e) ? toError(e as Errors) : new Error(String((e as { reason?: string })?.reason ?? e))),
        complete: () => handlers.complete?.(),
      },
    );
  }

  /** A subscription as an async iterator (`for await (const x of client.iterate(...))`). */
  async *iterate<TData, TVars extends Record<string, unknown>>(document: TypedDocumentNode<TData, TVars>, variables: TVars): AsyncGenerator<TData> {
    const queue: TData[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    let failure: Error | null = null;
    const stop = this.subscribe(document, variables, {
      next: (d) => {
        queue.push(d);
        wake?.();
      },
      error: (e) => {
        failure = e;
        done = true;
        wake?.();
      },
      complete: () => {
        done = true;
        wake?.();
      },
    });
    try {
      for (;;) {
        if (queue.length) {
          yield queue.shift()!;
          continue;
        }
        if (failure) throw failure;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      stop();
    }
  }

  /** Closes the subscription socket. */
  async close(): Promise<void> {
    await this.ws?.dispose();
    this.ws = null;
  }
}
