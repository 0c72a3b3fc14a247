import * as fs from 'fs';
import * as path from 'path';
import { parse, Kind, ObjectTypeDefinitionNode, SelectionSetNode } from 'graphql';
import { QUERY_DEPTH_LIMIT, RESOLVER_COUNT_LIMIT } from '../lib/context-chat-stack';
import { INFRA_ROOT, SCHEMA_PATH } from '../lib/paths';
import { functionId, render, resources, synth } from './support';

const { core } = synth();
const sdl = fs.readFileSync(SCHEMA_PATH, 'utf8');

/** `Type.field` for every field of Query and Mutation in the exported SDL. */
function rootFields(): string[] {
  return parse(sdl)
    .definitions.filter(
      (d): d is ObjectTypeDefinitionNode =>
        d.kind === Kind.OBJECT_TYPE_DEFINITION && ['Query', 'Mutation'].includes(d.name.value),
    )
    .flatMap((d) => (d.fields ?? []).map((f) => `${d.name.value}.${f.name.value}`))
    .sort();
}

test('AppSync gets the schema exported from the Rust schema, byte for byte', () => {
  const [schema] = Object.values(resources(core, 'AWS::AppSync::GraphQLSchema'));
  expect(schema.Properties.Definition).toBe(sdl);
});

test("the widget's four operations are in the schema", () => {
  expect(rootFields()).toEqual([
    'Mutation.createChatToken',
    'Mutation.enableChannelNotifications',
    'Mutation.verifyEmail',
    'Query.verifyToken',
  ]);
});

test('one direct Lambda resolver per field, each on the function of that name', () => {
  const resolvers = Object.values(resources(core, 'AWS::AppSync::Resolver'));
  const sources = resources(core, 'AWS::AppSync::DataSource');
  expect(resolvers.map((r) => `${r.Properties.TypeName}.${r.Properties.FieldName}`).sort()).toEqual(rootFields());
  const crateOf: Record<string, string> = {
    verifyToken: 'verify-token',
    createChatToken: 'create-chat-token',
    enableChannelNotifications: 'enable-channel-notifications',
    verifyEmail: 'verify-email',
  };
  for (const r of resolvers) {
    expect(r.Properties.Kind).toBe('UNIT');
    expect(r.Properties.RequestMappingTemplate).toBeUndefined();
    expect(r.Properties.ResponseMappingTemplate).toBeUndefined();
    expect(r.Properties.Code).toBeUndefined();
    const [source] = Object.values(sources).filter((s) => s.Properties.Name === r.Properties.DataSourceName);
    expect(source.Properties.Type).toBe('AWS_LAMBDA');
    expect(render(source.Properties.LambdaConfig.LambdaFunctionArn)).toBe(
      `\${${functionId(core, `chat-test-${crateOf[r.Properties.FieldName]}`)}.Arn}`,
    );
  }
});

test('API key auth, with a key valid for a year, and request logs that leave tokens out', () => {
  const [api] = Object.values(resources(core, 'AWS::AppSync::GraphQLApi'));
  expect(api.Properties.AuthenticationType).toBe('API_KEY');
  expect(api.Properties.LogConfig).toMatchObject({ FieldLogLevel: 'ERROR', ExcludeVerboseContent: true });
  const [key] = Object.values(resources(core, 'AWS::AppSync::ApiKey'));
  const days = (key.Properties.Expires - Date.now() / 1000) / 86400;
  expect(days).toBeGreaterThan(364);
  expect(days).toBeLessThanOrEqual(365);
});

test("AppSync refuses documents deeper or wider than the widget's operations need, and takes those", () => {
  const [api] = Object.values(resources(core, 'AWS::AppSync::GraphQLApi'));
  expect(api.Properties.QueryDepthLimit).toBe(QUERY_DEPTH_LIMIT);
  expect(api.Properties.ResolverCountLimit).toBe(RESOLVER_COUNT_LIMIT);
  const operations = parse(
    fs.readFileSync(path.join(INFRA_ROOT, '../scripts/chatctl/tests/fixtures/operations.graphql'), 'utf8'),
  );
  const depth = (set: SelectionSetNode | undefined): number =>
    set ? 1 + Math.max(...set.selections.map((s) => (s.kind === Kind.FIELD ? depth(s.selectionSet) : 0))) : 0;
  for (const op of operations.definitions) {
    if (op.kind !== Kind.OPERATION_DEFINITION) continue;
    expect([op.name?.value, depth(op.selectionSet) <= QUERY_DEPTH_LIMIT]).toEqual([op.name?.value, true]);
    expect(op.selectionSet.selections.length).toBeLessThanOrEqual(RESOLVER_COUNT_LIMIT);
  }
  expect(QUERY_DEPTH_LIMIT).toBeLessThan(5);
});
