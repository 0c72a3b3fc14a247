import { Stack } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { buildApp } from '../lib/app';
import { placeholderLambdaDir, placeholderWidgetDir, testApp } from './support';

const app = (context: Record<string, unknown> = {}) =>
  testApp({ stackName: 'chat-test', lambdaDir: placeholderLambdaDir(), widgetDir: placeholderWidgetDir(), ...context });

describe('cdk-nag AwsSolutions', () => {
  test('both stacks pass, with every accepted finding reasoned where it is made', () => {
    const a = app();
    buildApp(a);
    expect(() => a.synth()).not.toThrow();
  });

  test('a finding nobody accepted stops synthesis', () => {
    const a = app();
    const { core } = buildApp(a);
    new sqs.Queue(core, 'Careless', { enforceSSL: false });
    expect(() => a.synth()).toThrow(/AwsSolutions-SQS4/);
  });
});

describe('deployment settings', () => {
  test.each([['1chat'], ['chat_app'], ['a'.repeat(36)]])('stack name %s is refused with the rule', (name) => {
    expect(() => buildApp(app({ stackName: name }))).toThrow(/stackName .* must start with a letter/);
  });

  test('a retention CloudWatch does not offer is refused', () => {
    expect(() => buildApp(app({ logRetentionDays: 45 }))).toThrow(/logRetentionDays 45/);
  });

  test('an alarm address that is not one is refused', () => {
    expect(() => buildApp(app({ alarmEmail: 'ops at example' }))).toThrow(/alarmEmail "ops at example" is not an email address/);
  });

  test('a platform issuer that is not an https URL is refused', () => {
    expect(() => buildApp(app({ platformIssuer: 'tenant.eu.auth0.com' }))).toThrow(/platformIssuer "tenant.eu.auth0.com" is not an https URL/);
  });

  test('cdk-nag passes with the platform API too', () => {
    const a = app({ platformIssuer: 'https://tenant.eu.auth0.com/' });
    buildApp(a);
    expect(() => a.synth()).not.toThrow();
  });

  test('testStack must say true or false', () => {
    expect(() => buildApp(app({ testStack: 'yes' }))).toThrow(/testStack must be true or false/);
  });

  test('a missing build says which zip and how to make it', () => {
    expect(() => buildApp(app({ lambdaDir: '/nonexistent' }))).toThrow(
      '/nonexistent/verify-token/bootstrap.zip is missing: run scripts/build-lambdas first',
    );
  });

  test('without lambdaDir the zips are looked for where the scripts build: CARGO_TARGET_DIR/lambda', () => {
    const before = process.env.CARGO_TARGET_DIR;
    process.env.CARGO_TARGET_DIR = '/build-cache/target';
    try {
      expect(() => buildApp(testApp({ stackName: 'chat-test' }))).toThrow(
        '/build-cache/target/lambda/verify-token/bootstrap.zip is missing',
      );
    } finally {
      if (before === undefined) delete process.env.CARGO_TARGET_DIR;
      else process.env.CARGO_TARGET_DIR = before;
    }
  });

  test('the default stack name is context-chat, and the dev extras are named after it', () => {
    const a = testApp({ lambdaDir: placeholderLambdaDir(), widgetDir: placeholderWidgetDir() });
    const { core, devExtras } = buildApp(a);
    expect([core, devExtras].map((s: Stack) => s.stackName)).toEqual(['context-chat', 'context-chat-dev-extras']);
  });
});
