import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import * as path from 'path';
import { Node } from 'constructs';
import { INFRA_ROOT } from './paths';

/** What a deployment may choose, from CDK context (`cdk.json`, or `-c key=value`). */
export interface DeploymentConfig {
  /** The core stack's name: also the SSM prefix `/STACK/…` and the prefix of every resource name. */
  readonly stackName: string;
  /**
   * Where `scripts/build-lambdas` put `NAME/bootstrap.zip`: `-c lambdaDir=…`, else the `lambda`
   * folder of the Cargo target directory the scripts build in (`CARGO_TARGET_DIR`, which
   * `scripts/build-env` sets to the build cache), else `../target/lambda`.
   */
  readonly lambdaDir: string;
  readonly logRetention: RetentionDays;
  /** A throwaway stack: its table goes when the stack goes. */
  readonly testStack: boolean;
  /** Where the alarm topic sends email (AWS asks the address to confirm first). */
  readonly alarmEmail?: string;
  /**
   * The platform's identity provider (`iss` of its access tokens, trailing slash and all): with it,
   * AppSync gets an OpenID Connect mode for the platform API's fields and the platform-api function
   * is deployed. Audience and JWKS are SSM parameters (`/STACK/platform/…`), checked by the function.
   */
  readonly platformIssuer?: string;
  /**
   * Concurrent executions reserved for the webhook and for the notifier (`webhookConcurrency`,
   * default 10; `notifyConcurrency`, default 5; 0: none reserved): a flood elsewhere in the
   * account cannot take their capacity, and a flood of webhooks cannot take the account's.
   */
  readonly webhookConcurrency: number;
  readonly notifyConcurrency: number;
  /**
   * The chat widget's build (`widgetDir`, default `../widget/dist`), hosted on S3 behind
   * CloudFront; absent with `-c widget=false`.
   */
  readonly widgetDir?: string;
}

// Function names are `${stackName}-${crate}` (at most 64) and the longest crate name is 28.
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,34}$/;

/** Reads and checks the deployment's context; a mistake stops synthesis with a message that names it. */
export function readConfig(node: Node): DeploymentConfig {
  const stackName = String(node.tryGetContext('stackName') ?? 'context-chat');
  if (!STACK_NAME.test(stackName)) {
    throw new Error(
      `stackName "${stackName}" must start with a letter and hold only letters, digits and hyphens (at most 35).`,
    );
  }
  const lambdaDir = path.resolve(INFRA_ROOT, String(node.tryGetContext('lambdaDir') ?? defaultLambdaDir()));
  const days = Number(node.tryGetContext('logRetentionDays') ?? 90);
  if (!(Object.values(RetentionDays) as number[]).includes(days) || days === RetentionDays.INFINITE) {
    throw new Error(`logRetentionDays ${days} is not a retention CloudWatch Logs offers (1, 3, 5, 7, 14, 30, 60, 90, …).`);
  }
  const alarmEmail = node.tryGetContext('alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(String(alarmEmail))) {
    throw new Error(`alarmEmail "${alarmEmail}" is not an email address.`);
  }
  const platformIssuer = node.tryGetContext('platformIssuer');
  if (platformIssuer !== undefined && !/^https:\/\/[^\s/]+(\/\S*)?$/.test(String(platformIssuer))) {
    throw new Error(`platformIssuer "${platformIssuer}" is not an https URL (as the tokens' iss has it).`);
  }
  const concurrency = (key: string, fallback: number) => {
    const value = Number(node.tryGetContext(key) ?? fallback);
    if (!Number.isInteger(value) || value < 0 || value > 1000) {
      throw new Error(`${key} ${node.tryGetContext(key)} must be a whole number from 0 (none reserved) to 1000.`);
    }
    return value;
  };
  return {
    stackName,
    webhookConcurrency: concurrency('webhookConcurrency', 10),
    notifyConcurrency: concurrency('notifyConcurrency', 5),
    lambdaDir,
    logRetention: days as RetentionDays,
    testStack: flag(node, 'testStack'),
    alarmEmail: alarmEmail === undefined ? undefined : String(alarmEmail),
    platformIssuer: platformIssuer === undefined ? undefined : String(platformIssuer),
    widgetDir: flag(node, 'widget', true)
      ? path.resolve(INFRA_ROOT, String(node.tryGetContext('widgetDir') ?? '../widget/dist'))
      : undefined,
  };
}

function defaultLambdaDir(): string {
  const target = process.env.CARGO_TARGET_DIR;
  return target ? path.join(target, 'lambda') : '../target/lambda';
}

function flag(node: Node, key: string, fallback = false): boolean {
  const value = node.tryGetContext(key);
  if (value === undefined) return fallback;
  if (value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  throw new Error(`${key} must be true or false, not "${value}".`);
}
