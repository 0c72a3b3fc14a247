import { DEV_EXTRAS_FUNCTIONS, FUNCTIONS, productFunctions, render, resources, ssmPathsOf, statementsOf, synth } from './support';

const { core, devExtras } = synth();

test('the two stacks deploy every handler crate under functions/, each once', () => {
  const names = (template: typeof core) =>
    Object.values(productFunctions(template)).map((f) => f.Properties.FunctionName);
  const deployed = [
    ...names(core).map((n: string) => n.replace(/^chat-test-/, '')),
    ...names(devExtras).map((n: string) => n.replace(/^chat-test-dev-extras-/, '')),
  ].sort();
  expect(deployed).toEqual(FUNCTIONS);
  expect(names(devExtras).map((n: string) => n.replace(/^chat-test-dev-extras-/, ''))).toEqual(DEV_EXTRAS_FUNCTIONS);
  expect(FUNCTIONS).toContain('verify-token');
});

test('issue-dev-token reads only its key, under /STACK-dev-extras/chat-development', () => {
  const [fn] = Object.values(resources(devExtras, 'AWS::Lambda::Function'));
  expect(fn.Properties).toMatchObject({
    FunctionName: 'chat-test-dev-extras-issue-dev-token',
    Runtime: 'provided.al2023',
    Architectures: ['arm64'],
    Environment: { Variables: { DEV_EXTRAS_SSM_PATH: '/chat-test-dev-extras/chat-development' } },
  });
  const statements = statementsOf(devExtras, 'chat-test-dev-extras-issue-dev-token');
  expect(ssmPathsOf(statements)).toEqual(['/chat-test-dev-extras/chat-development']);
  const actions = statements.flatMap((s) => s.Action).sort();
  expect(actions).toEqual([
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'kms:Decrypt',
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'ssm:GetParametersByPath',
  ]);
});

test("issue-dev-token records its tokens in the core stack's table, and only there", () => {
  const [fn] = Object.values(resources(devExtras, 'AWS::Lambda::Function'));
  const tableName = JSON.stringify(fn.Properties.Environment.Variables.NOTIFICATIONS_TABLE);
  expect(tableName).toMatch(/Fn::ImportValue.*chat-test:.*Notifications/);
  const onTable = statementsOf(devExtras, 'chat-test-dev-extras-issue-dev-token').filter((s) =>
    s.Action.some((a: string) => a.startsWith('dynamodb:')),
  );
  expect(onTable).toHaveLength(1);
  expect(onTable[0].Resource).toEqual([expect.stringMatching(/^\$\{import:chat-test:\w*Notifications\w*Arn\w*\}$/)]);
});

test('an HTTP API with POST /token, GET /token/{xid} and GET /jwks.json, and their URLs as outputs', () => {
  const routes = Object.values(resources(devExtras, 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
  expect(routes.sort()).toEqual(['GET /jwks.json', 'GET /token/{xid}', 'POST /token']);
  const outputs = devExtras.toJSON().Outputs;
  expect(render(outputs.devTokenUrl.Value)).toMatch(/^\$\{TokenApi\w+\.ApiEndpoint\}\/token$/);
  expect(render(outputs.devJwksUrl.Value)).toMatch(/^\$\{TokenApi\w+\.ApiEndpoint\}\/jwks\.json$/);
  devExtras.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    DefaultRouteSettings: { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 },
  });
});

test('the dev-extras stack holds nothing of the core stack', () => {
  for (const type of ['AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::AppSync::GraphQLApi']) {
    expect(Object.keys(resources(devExtras, type))).toEqual([]);
  }
});
