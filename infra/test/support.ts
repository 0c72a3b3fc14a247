import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildApp } from '../lib/app';
import { INFRA_ROOT } from '../lib/paths';
import { WIDGET_FILES } from '../lib/widget-hosting';

const CRATES_DIR = path.join(INFRA_ROOT, '..', 'functions');

/**
 * The handler crates: every crate under `functions/` with a `src/main.rs`, derived as
 * `scripts/build-lambdas` derives it. The tests check that the two stacks deploy exactly these.
 */
export const FUNCTIONS = fs
  .readdirSync(CRATES_DIR)
  .filter((crate) => fs.existsSync(path.join(CRATES_DIR, crate, 'src', 'main.rs')))
  .sort();
/** What the dev-extras stack deploys; the core stack deploys the rest. */
export const DEV_EXTRAS_FUNCTIONS = ['issue-dev-token'];
export const CORE_FUNCTIONS = FUNCTIONS.filter((crate) => !DEV_EXTRAS_FUNCTIONS.includes(crate));

/** What this test file made under the system's temporary folder, removed when it ends. */
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** An app whose cloud assembly goes to a scratch folder (CDK's default, a new temporary folder per app, is never removed). */
export function testApp(context: Record<string, unknown>): App {
  return new App({ outdir: scratchDir('context-chat-cdk.out-'), context });
}

/**
 * A folder shaped like `target/lambda` (NAME/bootstrap.zip), so the stacks synthesize without
 * a Rust build; scripts/test synthesizes again with the real zips for cfn-lint.
 */
export function placeholderLambdaDir(): string {
  const dir = scratchDir('context-chat-lambdas-');
  for (const name of FUNCTIONS) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'bootstrap.zip'), `placeholder for ${name}`);
  }
  return dir;
}

/** A folder shaped like a widget build (`widget/dist`), so the stacks synthesize without one. */
export function placeholderWidgetDir(version = '1.2.3'): string {
  const dir = scratchDir('context-chat-widget-');
  for (const name of WIDGET_FILES) fs.writeFileSync(path.join(dir, name), `placeholder for ${name}`);
  const integrity = `sha384-${'A'.repeat(64)}`;
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ version, loader: { file: 'context-chat.js', integrity } }));
  return dir;
}

/** The tests' platform identity provider: by default the stacks are synthesized with the platform API. */
export const PLATFORM_ISSUER = 'https://tenant.eu.auth0.com/';

/** The app; a context value of `null` leaves that key out (`{ platformIssuer: null }`: no platform API). */
export function synth(context: Record<string, unknown> = {}) {
  const all: Record<string, unknown> = {
    stackName: 'chat-test',
    lambdaDir: placeholderLambdaDir(),
    widgetDir: placeholderWidgetDir(),
    platformIssuer: PLATFORM_ISSUER,
    ...context,
  };
  for (const key of Object.keys(all)) if (all[key] === null) delete all[key];
  const app = testApp(all);
  const stacks = buildApp(app);
  return {
    app,
    ...stacks,
    core: Template.fromStack(stacks.core),
    devExtras: Template.fromStack(stacks.devExtras),
  };
}

export type Resource = { Type: string; Properties: any; DependsOn?: string[]; DeletionPolicy?: string };

export function resources(template: Template, type: string): Record<string, Resource> {
  return template.findResources(type) as Record<string, Resource>;
}

/**
 * A CloudFormation value as text: `Ref` and `Fn::GetAtt` become `${Name}` and `${Name.Attr}`,
 * `Fn::Join` is joined, so an ARN reads as `arn:${AWS::Partition}:ssm:…:parameter/chat-test/twilio`.
 */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(render).join(',');
  if (value && typeof value === 'object') {
    const v = value as Record<string, any>;
    if ('Ref' in v) return `\${${v.Ref}}`;
    if ('Fn::GetAtt' in v) return `\${${v['Fn::GetAtt'].join('.')}}`;
    if ('Fn::Join' in v) return v['Fn::Join'][1].map(render).join(v['Fn::Join'][0]);
    if ('Fn::ImportValue' in v) return `\${import:${v['Fn::ImportValue']}}`;
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/**
 * The product's functions: each is named `${stack}-${crate}`. CDK's own (the widget upload's
 * handler, which CDK names itself) are not ours to check.
 */
export function productFunctions(template: Template): Record<string, Resource> {
  return Object.fromEntries(
    Object.entries(resources(template, 'AWS::Lambda::Function')).filter(([, f]) => typeof f.Properties.FunctionName === 'string'),
  );
}

/** The logical id of the function named `${stack}-${crate}`. */
export function functionId(template: Template, name: string): string {
  const ids = Object.entries(resources(template, 'AWS::Lambda::Function'))
    .filter(([, r]) => r.Properties.FunctionName === name)
    .map(([id]) => id);
  if (ids.length !== 1) throw new Error(`${ids.length} functions named ${name}`);
  return ids[0];
}

export type Statement = { Action: string[]; Resource: string[]; Condition?: any; Effect: string };

/** Every statement of every policy attached to the role of the function named `name`. */
export function statementsOf(template: Template, name: string): Statement[] {
  const fn = resources(template, 'AWS::Lambda::Function')[functionId(template, name)];
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  const role = resources(template, 'AWS::IAM::Role')[roleId];
  expect(role.Properties.ManagedPolicyArns ?? []).toEqual([]);
  return Object.values(resources(template, 'AWS::IAM::Policy'))
    .filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .map((s: any) => ({
      ...s,
      Action: [s.Action].flat(),
      Resource: [s.Resource].flat().map(render),
    }));
}

/** The SSM paths a function may read, as the ARNs' path part (`/chat-test/twilio`). */
export function ssmPathsOf(statements: Statement[]): string[] {
  return ssmResourcesOf(statements, 'ssm:GetParametersByPath');
}

/** The SSM parameters a function may read by name (`/chat-test/twilio/apiKey`). */
export function ssmNamesOf(statements: Statement[]): string[] {
  return ssmResourcesOf(statements, 'ssm:GetParameters');
}

function ssmResourcesOf(statements: Statement[], action: string): string[] {
  return statements
    .filter((s) => s.Action.includes(action))
    .flatMap((s) => s.Resource)
    .map((arn) => arn.replace(/^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:parameter/, ''))
    .sort();
}
