import * as fs from 'fs';
import * as path from 'path';
import { parse, Kind, ObjectTypeDefinitionNode, SelectionSetNode } from 'graphql';
import { QUERY_DEPTH_LIMIT, RESOLVER_COUNT_LIMIT } from '../lib/context-chat-stack';
import { INFRA_ROOT, PLATFORM_SCHEMA_PATH, SCHEMA_PATH, appsyncResolvers } from '../lib/paths';
import { PLATFORM_ISSUER, functionId, render, resources, synth } from './support';

const { core } = synth();
const sdl = fs.readFileSync(PLATFORM_SCHEMA_PATH, 'utf8');
const widgetSdl = fs.readFileSync(SCHEMA_PATH, 'utf8');

/** `Type.field` for every field of Query and Mutation in the exported SDL. */
function rootFields(schema = sdl): string[] {
  return parse(schema)
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

const WIDGET_FIELDS = [
  'Mutation.createChatToken',
  'Mutation.createVirgilToken',
  'Mutation.enableChannelNotifications',
  'Mutation.enableChannelSmsNotifications',
  'Mutation.issueChatToken',
  'Mutation.verifyEmail',
  'Mutation.verifyPhone',
  'Query.verifyToken',
];
const PLATFORM_FIELDS = [
  'Mutation.archiveContext',
  'Mutation.eraseIdentity',
  'Mutation.revokeIdentity',
  'Mutation.syncIdentity',
  'Mutation.updateContext',
  'Query.contextAccess',
  'Query.contextMembers',
  'Query.exportIdentity',
  'Query.identityContexts',
  'Query.tokenIssuance',
  'Query.tokenIssuances',
  'Query.unreadCounts',
];
/** The platform API's result types. */
const PLATFORM_TYPES = ['SyncResult', 'RevokeResult', 'TokenIssuance', 'UnreadCount', 'ContextRoom', 'ContextAccess', 'AccessCause', 'EraseResult', 'ArchiveResult'];

test("the widget's operations (and issueChatToken) and the platform API's fields are in the schema", () => {
  expect(rootFields()).toEqual([...WIDGET_FIELDS, ...PLATFORM_FIELDS].sort());
  expect(rootFields(widgetSdl)).toEqual(WIDGET_FIELDS);
});

test('each authorization mode opens only its own fields and types', () => {
  const directives = new Map<string, string[]>();
  for (const d of parse(sdl).definitions) {
    if (d.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    const names = (ds: readonly { name: { value: string } }[] | undefined) => (ds ?? []).map((x) => x.name.value);
    if (['Query', 'Mutation'].includes(d.name.value)) {
      for (const f of d.fields ?? []) directives.set(`${d.name.value}.${f.name.value}`, names(f.directives));
    } else {
      directives.set(d.name.value, names(d.directives));
    }
  }
  for (const [name, on] of directives) {
    const platform = PLATFORM_FIELDS.includes(name) || PLATFORM_TYPES.includes(name);
    expect([name, on]).toEqual([name, [platform ? 'aws_oidc' : 'aws_api_key']]);
  }
});

test('without a platform issuer: the widget schema, the API key alone, no platform function', () => {
  const { core: widgetOnly } = synth({ platformIssuer: null });
  const [schema] = Object.values(resources(widgetOnly, 'AWS::AppSync::GraphQLSchema'));
  expect(schema.Properties.Definition).toBe(widgetSdl);
  const [api] = Object.values(resources(widgetOnly, 'AWS::AppSync::GraphQLApi'));
  expect(api.Properties.AdditionalAuthenticationProviders ?? []).toEqual([]);
  const names = Object.values(resources(widgetOnly, 'AWS::Lambda::Function')).map((f) => f.Properties.FunctionName);
  expect(names).not.toContain('chat-test-platform-api');
  expect(Object.keys(resources(widgetOnly, 'AWS::AppSync::Resolver'))).toHaveLength(WIDGET_FIELDS.length);
});

test('one direct Lambda resolver per field, each on the function of that name', () => {
  const resolvers = Object.values(resources(core, 'AWS::AppSync::Resolver'));
  const sources = resources(core, 'AWS::AppSync::DataSource');
  expect(resolvers.map((r) => `${r.Properties.TypeName}.${r.Properties.FieldName}`).sort()).toEqual(rootFields());
  // The function of each field, as the Rust field groups say (infra/appsync-resolvers.json,
  // kept current by a chatctl test); spot-checked here against what the contract implies.
  const crateOf: Record<string, string> = Object.fromEntries(
    appsyncResolvers().map((r) => [r.fieldName, r.function]),
  );
  expect(crateOf.verifyToken).toBe('verify-token');
  expect(crateOf.verifyPhone).toBe('verify-email');
  expect(crateOf.enableChannelSmsNotifications).toBe('enable-channel-notifications');
  expect(crateOf.revokeIdentity).toBe('platform-api');

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

test('API key auth (OIDC for the platform), with a key valid for a year, and request logs that leave tokens out', () => {
  const [api] = Object.values(resources(core, 'AWS::AppSync::GraphQLApi'));
  expect(api.Properties.AuthenticationType).toBe('API_KEY');
  // Platform backends: their identity provider's access tokens, by OpenID Connect.
  expect(api.Properties.AdditionalAuthenticationProviders).toEqual([
    { AuthenticationType: 'OPENID_CONNECT', OpenIDConnectConfig: { Issuer: PLATFORM_ISSUER } },
  ]);
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
