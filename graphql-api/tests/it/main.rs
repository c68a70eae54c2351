//! GraphQL API tests: a database the real indexer fills from anvil activity through the real contracts, the API
//! served on a free port, queried over HTTP and subscribed to over WebSocket (graphql-transport-ws).

mod dashboards;
mod errors;
mod harness;
mod health;
mod limits;
mod replica;
mod revocation;
mod splits;
mod subscriptions;
