import { CfnOutput, CfnResource, Duration, Expiration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as appsync from 'aws-cdk-lib/aws-appsync';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { NotificationAlarms } from './alarms';
import { DeploymentConfig } from './config';
import { addHttpApiAccessLogs } from './http-api';
import { acceptFinding } from './nag';
import { Operations } from './operations';
import { PLATFORM_SCHEMA_PATH, SCHEMA_PATH, appsyncResolvers } from './paths';
import { RustFunction } from './rust-function';
import { grantSsmParametersRead, ssmParametersOf } from './ssm-access';
import { WidgetHosting } from './widget-hosting';

export type ContextChatStackProps = StackProps & Omit<DeploymentConfig, 'stackName'>;

/** What the store's port calls; nothing scans, nothing batch-writes. */
const STORE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query'];
/** What minting needs of the table: the ledger's record and the limit's counter in one transaction. */
export const MINT_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

/** The contract's operations are at most two levels deep (`verifyToken { identity }`). */
export const QUERY_DEPTH_LIMIT = 3;
/** The widget sends one field per request; a little room for a client that batches a few. */
export const RESOLVER_COUNT_LIMIT = 4;

/** Where Twilio posts, below the HTTP API's URL (the stack output twilioWebhookReceiverURL). */
export const WEBHOOK_PATH = '/twilio/webhook';
/** The webhook route's own throttle: a busy deployment's message rate, with room. */
export const WEBHOOK_THROTTLE = { rateLimit: 50, burstLimit: 100 };

/** The notifier works through a batch of up to ten events, each with Twilio and SendGrid calls. */
const NOTIFY_TIMEOUT = Duration.seconds(60);
/** The deliverer's batch of up to ten events, each waiting at most 10 s for the platform. */
const EVENTS_TIMEOUT = Duration.seconds(120);

/**
 * The product in the cloud: the widget's AppSync API (one direct Lambda resolver per field), the
 * Twilio webhook and unsubscribe links on an HTTP API, the notifier behind two SQS queues, and the
 * notification table. Settings come from SSM under `/STACK/`, which this stack does not create.
 */
export class ContextChatStack extends Stack {
  readonly api: appsync.GraphqlApi;
  readonly httpApi: apigw.HttpApi;
  readonly table: dynamodb.Table;
  /** The chat widget's hosting, unless the deployment leaves it out. */
  readonly widget?: WidgetHosting;

  constructor(scope: Construct, id: string, props: ContextChatStackProps) {
    super(scope, id, props);
    const name = this.stackName;
    // Each function with exactly the SSM parameters its code reads (infra/ssm-parameters.json).
    const deployed: string[] = [];
    const reserved: Record<string, number> = {
      'twilio-webhook': props.webhookConcurrency,
      notify: props.notifyConcurrency,
    };
    const fn = (crate: string, description: string, timeout: Duration, environment: Record<string, string> = {}) => {
      deployed.push(crate);
      const parameters = ssmParametersOf(crate);
      if (!parameters) throw new Error(`${crate} is not in ssm-parameters.json: run \`chatctl parameters\``);
      const f = new RustFunction(this, pascal(crate), {
        crate,
        description,
        timeout,
        lambdaDir: props.lambdaDir,
        logRetention: props.logRetention,
        environment: { STACK_NAME: name, ...environment },
        reservedConcurrency: reserved[crate],
      });
      grantSsmParametersRead(
        f.role,
        parameters.map((p) => `/${name}/${p}`),
      );
      return f;
    };

    this.table = new dynamodb.Table(this, 'Notifications', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: props.testStack ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    const tableEnv = { NOTIFICATIONS_TABLE: this.table.tableName };
    const useTable = (f: RustFunction) => this.table.grant(f.role, ...STORE_ACTIONS);
    // The internet-facing functions reach only the partitions they use (issue 30, L6): a flaw
    // in one cannot write or delete another feature's records.
    const useTableUnder = (f: RustFunction, prefixes: string[], actions: string[]) =>
      f.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions,
          resources: [this.table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': prefixes.map((p) => `${p}#*`) } },
        }),
      );

    // Message events, in order per conversation (group = ConversationSid, de-dup = MessageSid).
    const messageEvents = queueWithDlq(this, 'MessageEvents', { fifo: true, consumerTimeout: NOTIFY_TIMEOUT });
    // Digest flushes, each due up to 15 minutes later (FIFO queues have no per-message delay),
    // and the second sweeps after revokeIdentity and syncIdentity.
    const flushes = queueWithDlq(this, 'DigestFlushes', { fifo: false, consumerTimeout: NOTIFY_TIMEOUT });
    // Events to the platform (ADR 022), on a queue and a function of their own so that a slow
    // platform never holds up a notification. The deliverer re-queues a refused event with a
    // delay, and after a day puts it on the dead-letter queue itself (as SQS's redrive does
    // with a record that keeps failing).
    const events = queueWithDlq(this, 'PlatformEvents', { fifo: false, consumerTimeout: EVENTS_TIMEOUT });
    const eventsEnv = { EVENTS_QUEUE_URL: events.queue.queueUrl };
    const emitsEvents = (f: RustFunction) => events.queue.grantSendMessages(f.role);

    // Functions, each with its own SSM parameters, table rights and queues.
    const verifyToken = fn('verify-token', 'AppSync Query.verifyToken', Duration.seconds(10), tableEnv);
    // Revocations are read from the table.
    this.table.grant(verifyToken.role, 'dynamodb:GetItem');
    // Provisioning in Twilio may take up to 12 s; AppSync waits at most 30 s.
    const createChatToken = fn(
      'create-chat-token',
      'AppSync Mutation.createChatToken, Mutation.issueChatToken and Mutation.createVirgilToken',
      Duration.seconds(20),
      { ...tableEnv, ...eventsEnv },
    );
    emitsEvents(createChatToken);
    // Revocations are read; leaving a context ends its email subscription: a read, and deletes.
    // Every token is recorded with its minting counted: one TransactWriteItems of a Put and an
    // Update (DynamoDB checks each action's right); a record is deleted if provisioning fails.
    this.table.grant(createChatToken.role, ...MINT_ACTIONS);

    const enable = fn(
      'enable-channel-notifications',
      'AppSync Mutation.enableChannelNotifications and Mutation.enableChannelSmsNotifications',
      Duration.seconds(20),
      tableEnv,
    );
    useTable(enable);

    // Confirms a code against the table; the issuer's settings check a token when one comes.
    const verifyEmail = fn('verify-email', 'AppSync Mutation.verifyEmail and Mutation.verifyPhone', Duration.seconds(10), tableEnv);
    useTable(verifyEmail);

    const webhook = fn('twilio-webhook', 'Twilio onMessageAdded webhook and unsubscribe links', Duration.seconds(10), {
      ...tableEnv,
      NOTIFY_QUEUE_URL: messageEvents.queue.queueUrl,
    });
    // Unsubscribe links end a context's subscriptions and digests: CHANNEL# partitions only.
    useTableUnder(webhook, ['CHANNEL'], STORE_ACTIONS);
    messageEvents.queue.grantSendMessages(webhook.role);

    // The REST token routes of sample apps: the same settings and table rights as createChatToken.
    const tokenRoutes = fn(
      'token-routes',
      'GET /virgil-jwt and GET /twilio-jwt (Authorization: Bearer <context token>)',
      Duration.seconds(20),
      { ...tableEnv, ...eventsEnv },
    );
    emitsEvents(tokenRoutes);
    // As createChatToken: the identity's records (revocation, ledger by identity, counters),
    // the ledger by xid, and the subscriptions of contexts left.
    useTableUnder(tokenRoutes, ['IDENTITY', 'ISSUANCE', 'CHANNEL'], MINT_ACTIONS);

    this.httpApi = new apigw.HttpApi(this, 'WebhookApi', {
      apiName: `${name}-webhooks`,
      description: `${name}: Twilio's webhook, the unsubscribe links in notification emails, and the REST token routes`,
      // Browsers may call the token routes from any page, as they may call AppSync; the bearer
      // is the credential (no cookies), and the webhook's callers send no Origin.
      corsPreflight: {
        allowOrigins: ['*'],
        allowMethods: [apigw.CorsHttpMethod.GET],
        allowHeaders: ['authorization'],
        maxAge: Duration.hours(1),
      },
    });
    const webhookIntegration = new HttpLambdaIntegration('TwilioWebhook', webhook.fn);
    // The last segment is webhook/pathSecret (made by put-params, given to Twilio by
    // configure-twilio): the function refuses any other before any work (ADR 010).
    const [webhookRoute] = this.httpApi.addRoutes({
      path: `${WEBHOOK_PATH}/{secret}`,
      methods: [apigw.HttpMethod.POST],
      integration: webhookIntegration,
    });
    this.httpApi.addRoutes({
      path: '/notifications/unsubscribe',
      methods: [apigw.HttpMethod.GET, apigw.HttpMethod.POST],
      integration: webhookIntegration,
    });
    const tokenIntegration = new HttpLambdaIntegration('TokenRoutes', tokenRoutes.fn);
    for (const path of ['/virgil-jwt', '/twilio-jwt']) {
      this.httpApi.addRoutes({ path, methods: [apigw.HttpMethod.GET], integration: tokenIntegration });
    }
    addHttpApiAccessLogs(this.httpApi, props.logRetention, { rateLimit: 100, burstLimit: 200 }, [
      // Twilio's webhook has a throttle of its own, so that the token routes' callers never
      // spend its allowance (nor it theirs).
      { route: webhookRoute, key: `POST ${WEBHOOK_PATH}/{secret}`, ...WEBHOOK_THROTTLE },
    ]);
    acceptFinding(
      this.httpApi,
      'APIG4',
      'Twilio cannot send AWS credentials: the function checks the X-Twilio-Signature of every webhook, ' +
        'and an unsubscribe link carries an HMAC of its channel and address; the token routes check ' +
        'the context token in their Authorization header, as the AppSync resolvers do.',
    );

    const notify = fn('notify', 'Emails offline subscribers about new messages (from SQS)', NOTIFY_TIMEOUT, {
      ...tableEnv,
      NOTIFY_DELAY_QUEUE_URL: flushes.queue.queueUrl,
      NOTIFICATIONS_PUBLIC_URL: this.httpApi.apiEndpoint,
      ...eventsEnv,
    });
    useTable(notify);
    flushes.queue.grantSendMessages(notify.role);
    emitsEvents(notify);
    const deliverEvents = fn('deliver-events', 'Sends events to the platform (from SQS), signed; retries for a day', EVENTS_TIMEOUT, {
      ...eventsEnv,
      EVENTS_DEAD_LETTER_QUEUE_URL: events.deadLetters.queueUrl,
    });
    emitsEvents(deliverEvents);
    events.deadLetters.grantSendMessages(deliverEvents.role);
    deliverEvents.fn.addEventSource(new SqsEventSource(events.queue, { batchSize: 10, reportBatchItemFailures: true }));
    for (const queue of [messageEvents.queue, flushes.queue]) {
      notify.fn.addEventSource(new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true }));
    }
    const alarms = new NotificationAlarms(this, 'Alarms', {
      deadLetterQueues: {
        MessageEventsDeadLetters: messageEvents.deadLetters,
        DigestFlushesDeadLetters: flushes.deadLetters,
        PlatformEventsDeadLetters: events.deadLetters,
      },
      workQueues: { MessageEvents: messageEvents.queue, DigestFlushes: flushes.queue, PlatformEvents: events.queue },
      email: props.alarmEmail,
    });

    // The platform API (for platform backends): its own function and AppSync authorization mode.
    let platformApi: RustFunction | undefined;
    if (props.platformIssuer) {
      // Provisioning as createChatToken does, on any identity: up to 12 s per call to Twilio.
      platformApi = fn('platform-api', 'AppSync platform API (OIDC): identityContexts, contextMembers, tokenIssuance(s), syncIdentity, revokeIdentity', Duration.seconds(25), {
        ...tableEnv,
        // Each revocation and sync queues a second sweep, which the notifier runs (ADR 012).
        NOTIFY_DELAY_QUEUE_URL: flushes.queue.queueUrl,
        ...eventsEnv,
      });
      emitsEvents(platformApi);
      // Revocations and syncs are written; subscriptions of left contexts are read and deleted;
      // the ledger is read (a record by xid, an identity's newest by a query).
      useTable(platformApi);
      flushes.queue.grantSendMessages(platformApi.role);
    }
    // The functions' own metrics: a dashboard, and alarms to the same topic.
    new Operations(this, 'Operations', { stackName: name, functions: deployed, alarms });

    this.api = new appsync.GraphqlApi(this, 'Api', {
      name,
      definition: appsync.Definition.fromFile(props.platformIssuer ? PLATFORM_SCHEMA_PATH : SCHEMA_PATH),
      // The widget's operations are two levels deep and resolve one field each: AppSync refuses
      // anything much larger before a function runs (one request cannot fan out to many Lambdas).
      queryDepthLimit: QUERY_DEPTH_LIMIT,
      resolverCountLimit: RESOLVER_COUNT_LIMIT,
      authorizationConfig: {
        defaultAuthorization: {
          authorizationType: appsync.AuthorizationType.API_KEY,
          // The longest AppSync allows; every deploy moves it a year on.
          apiKeyConfig: { name: 'widget', description: 'The chat widget', expires: Expiration.after(Duration.days(365)) },
        },
        // Platform backends: the fields marked @aws_oidc take their identity provider's access
        // tokens (AppSync checks signature, issuer and expiry; the function audience and scope).
        additionalAuthorizationModes: props.platformIssuer
          ? [
              {
                authorizationType: appsync.AuthorizationType.OIDC,
                openIdConnectConfig: { oidcProvider: props.platformIssuer },
              },
            ]
          : [],
      },
    });
    this.addApiLogs(props.logRetention);
    if (props.widgetDir) {
      this.widget = new WidgetHosting(this, 'Widget', {
        dir: props.widgetDir,
        testStack: props.testStack,
        logRetentionDays: props.logRetention,
      });
    }
    // Each root field on the function whose field group resolves it (infra/appsync-resolvers.json,
    // exported from the Rust code); the platform API's only where it is deployed.
    const functions: Record<string, RustFunction | undefined> = {
      'verify-token': verifyToken,
      'create-chat-token': createChatToken,
      'enable-channel-notifications': enable,
      'verify-email': verifyEmail,
      'platform-api': platformApi,
    };
    const resolvers: [string, string, RustFunction][] = [];
    for (const { typeName, fieldName, function: crate } of appsyncResolvers()) {
      if (!(crate in functions)) throw new Error(`${typeName}.${fieldName}: no function ${crate} in this stack`);
      const f = functions[crate];
      if (f) resolvers.push([typeName, fieldName, f]);
    }
    // One data source per function (the widget's are named after their field).
    const sources = new Map<RustFunction, appsync.LambdaDataSource>();
    for (const [typeName, fieldName, f] of resolvers) {
      let source = sources.get(f);
      if (!source) {
        const sourceName = f === platformApi ? 'platformApi' : fieldName;
        source = this.api.addLambdaDataSource(pascal(sourceName), f.fn, { name: sourceName });
        sources.set(f, source);
        acceptFinding(
          source,
          `IAM5[Resource::<${this.getLogicalId(f.fn.node.defaultChild as CfnResource)}.Arn>:*]`,
          "CDK's grant to invoke one function also covers that function's versions and aliases.",
        );
      }
      // No mapping templates: a direct Lambda resolver, whose function error type is the errorType.
      source.createResolver(`${typeName}${pascal(fieldName)}`, { typeName, fieldName });
    }

    new CfnOutput(this, 'apiUrl', { value: this.api.graphqlUrl, description: 'The GraphQL endpoint the widget calls' });
    new CfnOutput(this, 'apiKey', { value: this.api.apiKey ?? '', description: 'The API key the widget sends (x-api-key)' });
    if (props.platformIssuer) {
      new CfnOutput(this, 'platformIssuer', {
        value: props.platformIssuer,
        description: 'Platform backends call apiUrl with this issuer\'s access tokens (Authorization header)',
      });
    }
    new CfnOutput(this, 'tokenRoutesURL', {
      value: this.httpApi.apiEndpoint,
      description: 'Sample apps call GET /virgil-jwt and GET /twilio-jwt here, with Authorization: Bearer <context token>',
    });
    new CfnOutput(this, 'twilioWebhookReceiverURL', {
      value: `${this.httpApi.apiEndpoint}${WEBHOOK_PATH}`,
      description:
        'The post-event webhook base URL: chatctl configure-twilio --webhook-url <it> gives Twilio <it>/<webhook/pathSecret>',
    });
  }

  /**
   * Request and error logs of the GraphQL API, kept for the deployment's retention, written with a
   * role of our own (CDK's default adds a log-retention Lambda and an AWS managed policy).
   */
  private addApiLogs(retention: logs.RetentionDays): void {
    const logGroup = new logs.LogGroup(this, 'ApiLogs', {
      logGroupName: `/aws/appsync/apis/${this.api.apiId}`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'ApiLogsRole', {
      assumedBy: new iam.ServicePrincipal('appsync.amazonaws.com'),
      description: `${this.stackName}: AppSync writes the API's logs`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const api = this.api.node.defaultChild as appsync.CfnGraphQLApi;
    api.logConfig = { cloudWatchLogsRoleArn: role.roleArn, fieldLogLevel: 'ERROR', excludeVerboseContent: true };
    acceptFinding(
      api,
      'ASC3',
      'Request-level logs are on. Verbose content stays off: it would write resolver arguments, ' +
        'which hold the widget\'s context tokens, to the logs.',
    );
  }
}

/**
 * A queue with server-side encryption, TLS only, and a dead-letter queue after five receives;
 * its visibility timeout is six times its Lambda consumer's timeout, as AWS advises.
 */
function queueWithDlq(scope: Construct, id: string, props: { fifo: boolean; consumerTimeout: Duration }) {
  const common = {
    fifo: props.fifo || undefined,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  };
  const deadLetters = new sqs.Queue(scope, `${id}DeadLetters`, { ...common, retentionPeriod: Duration.days(14) });
  const queue = new sqs.Queue(scope, id, {
    ...common,
    contentBasedDeduplication: props.fifo ? false : undefined,
    visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
    deadLetterQueue: { queue: deadLetters, maxReceiveCount: 5 },
  });
  return { queue, deadLetters };
}

/** `create-chat-token` → `CreateChatToken`, `verifyToken` → `VerifyToken`. */
export function pascal(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

