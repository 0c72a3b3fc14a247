import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import * as fs from 'fs';
import * as path from 'path';

export interface RustFunctionProps {
  /** The handler crate under `functions/`; its build is `${lambdaDir}/${crate}/bootstrap.zip`. */
  readonly crate: string;
  readonly lambdaDir: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly environment?: Record<string, string>;
  readonly memorySize?: number;
  /** Concurrent executions reserved for this function; unset or 0: none. */
  readonly reservedConcurrency?: number;
}

/**
 * One handler crate as a Lambda function: arm64 on `provided.al2023`, the zip cargo lambda built,
 * JSON logs into a log group of its own with a retention, and a role that holds nothing but the
 * right to write that log group (no managed policy); each stack grants the rest by name.
 */
export class RustFunction extends Construct {
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    const zip = path.join(props.lambdaDir, props.crate, 'bootstrap.zip');
    if (!fs.existsSync(zip)) {
      throw new Error(`${zip} is missing: run scripts/build-lambdas first (or set -c lambdaDir=…).`);
    }
    const functionName = `${Stack.of(this).stackName}-${props.crate}`;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${functionName}: writes its logs; every other right is granted by name`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`${this.logGroup.logGroupArn}`],
      }),
    );
    this.fn = new lambda.Function(this, 'Function', {
      functionName,
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(zip),
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      environment: props.environment,
      reservedConcurrentExecutions: props.reservedConcurrency || undefined,
    });
  }
}
