import { Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Accepts a cdk-nag AwsSolutions finding on `scope` (and what it holds), with the reason a
 * reviewer gave. `rule` is the finding as cdk-nag prints it, e.g. `APIG4` or `IAM5[Resource::*]`.
 */
export function acceptFinding(scope: IConstruct, rule: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });
}
