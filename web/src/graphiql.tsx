// GraphiQL from the node's own bundle: queries POST to /graphql, subscriptions go over /graphql/ws
// (graphql-transport-ws). `?query=` preloads a query, as the README's tour links do.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
import { createRoot } from 'react-dom/client';

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const fetcher = createGraphiQLFetcher({
  url: '/graphql',
  subscriptionUrl: `${scheme}://${location.host}/graphql/ws`,
});
const params = new URLSearchParams(location.search);
const query = params.get('query') ?? undefined;

createRoot(document.getElementById('graphiql')!).render(
  <GraphiQL fetcher={fetcher} defaultQuery={query} query={query} defaultEditorToolsVisibility={false} />,
);
