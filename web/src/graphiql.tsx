// GraphiQL from the node's own bundle: queries POST to /graphql, subscriptions go over /graphql/ws
// (graphql-transport-ws). `?query=` preloads a query, as the README's tour links do.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
import { parse, print } from 'graphql';
import { createRoot } from 'react-dom/client';

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const fetcher = createGraphiQLFetcher({
  url: '/graphql',
  subscriptionUrl: `${scheme}://${location.host}/graphql/ws`,
});
const params = new URLSearchParams(location.search);
/** The preloaded query laid out on lines, as GraphiQL's prettify would (unchanged when it does not parse). */
function layOut(text: string | null): string | undefined {
  if (text === null) return undefined;
  try {
    return print(parse(text));
  } catch {
    return text;
  }
}
const query = layOut(params.get('query'));

createRoot(document.getElementById('graphiql')!).render(
  <GraphiQL fetcher={fetcher} defaultQuery={query} query={query} defaultEditorToolsVisibility={false} />,
);
