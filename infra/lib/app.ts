import { App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig } from './config';
import { ContextChatStack } from './context-chat-stack';
import { DevExtrasStack } from './dev-extras-stack';

/** The app's two stacks, checked by cdk-nag's AwsSolutions rules; tests build it the same way. */
export function buildApp(app: App): { core: ContextChatStack; devExtras: DevExtrasStack } {
  // S3 access logs delivered under a bucket policy, not the legacy LogDeliveryWrite ACL.
  app.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
  const config = readConfig(app.node);
  const core = new ContextChatStack(app, config.stackName, {
    description: 'Context Chat: context tokens to Twilio Conversations, with email notifications',
    ...config,
  });
  const devExtras = new DevExtrasStack(app, `${config.stackName}-dev-extras`, {
    description: 'Context Chat development extras: context tokens for any identity (never in production)',
    lambdaDir: config.lambdaDir,
    logRetention: config.logRetention,
    table: core.table,
  });
  for (const stack of [core, devExtras]) {
    Tags.of(stack).add('app', 'context-chat');
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { core, devExtras };
}
