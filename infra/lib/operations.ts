import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { NotificationAlarms } from './alarms';

/** The namespace of the metrics every function writes as CloudWatch EMF lines (`context_chat::metrics`). */
export const NAMESPACE = 'ContextChat';
/** What became of a notification: `Notifications<outcome>`, by `Channel` (`metrics::Outcome`). */
export const NOTIFICATION_OUTCOMES = ['Sent', 'Folded', 'SkippedOnline', 'SkippedUnconfirmed', 'SkippedRead', 'SkippedNotMember'];
/** The `errorType` values of the contract: the `ErrorType` dimension's values. */
export const ERROR_TYPES = ['BadRequest', 'AccessDenied', 'EntityNotFound', 'Conflict', 'InternalError', 'TooManyRequests'];

export interface OperationsProps {
  /** The `Stack` dimension: the stack's name, as the functions read it from STACK_NAME. */
  readonly stackName: string;
  /** The `Function` dimension's values: the handler crates this stack deploys. */
  readonly functions: string[];
  /** The alarm topic's alarms; the service alarms join them. */
  readonly alarms: NotificationAlarms;
}

const PERIOD = Duration.minutes(5);

/**
 * What an operator reads at 3 a.m.: a dashboard of the functions' own metrics (tokens issued and
 * refused, provisioning, Twilio's answers and latency, emails, webhooks, limits), and alarms on
 * the ones that mean trouble: internal errors, Twilio throttling or failing, refused webhooks
 * spiking. Each alarm's description says where to look.
 */
export class Operations extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const stack = props.stackName;
    const metric = (metricName: string, extra: Record<string, string> = {}, statistic = 'Sum', label?: string) =>
      new cloudwatch.Metric({
        namespace: NAMESPACE,
        metricName,
        dimensionsMap: { Stack: stack, ...extra },
        statistic,
        period: PERIOD,
        label: label ?? metricName,
      });
    /** Sums over the stack, each with its label (its name when none is given). */
    const sums = (...named: [string, string?][]) => named.map(([name, label]) => metric(name, {}, 'Sum', label));
    const byError = (metricName: string) => ERROR_TYPES.map((t) => metric(metricName, { ErrorType: t }, 'Sum', t));
    const perFunction = (metricName: string) =>
      props.functions.map((f) => metric(metricName, { Function: f }, 'Sum', f));

    // Alarms.
    const internalRate = new cloudwatch.MathExpression({
      // Percent of requests answered InternalError, once there are enough requests to say.
      expression: 'IF(requests >= 20, 100 * internal / requests, 0)',
      usingMetrics: { internal: metric('Errors', { ErrorType: 'InternalError' }), requests: metric('Requests') },
      period: PERIOD,
      label: 'InternalError %',
    });
    const alarms = [
      props.alarms.add(
        'InternalErrors',
        internalRate,
        5,
        `${stack}: over 5% of requests answered InternalError for 10 minutes (at least 20 requests in 5 minutes). ` +
          'The functions\' logs carry each error\'s reason (error_type = "InternalError"): a missing setting, Twilio refusing a step, the table.',
        2,
      ),
      props.alarms.add(
        'TwilioThrottled',
        metric('TwilioThrottled'),
        10,
        `${stack}: Twilio answered 429 Too Many Requests 10 times or more in 5 minutes; calls are being retried ` +
          'and may fail. Look at TwilioRequests on the dashboard and at Twilio\'s rate limits for the account.',
      ),
      props.alarms.add(
        'TwilioServerErrors',
        metric('TwilioServerErrors'),
        10,
        `${stack}: Twilio answered 5xx (or not at all) 10 times or more in 5 minutes. See status.twilio.com; ` +
          'token calls fail with InternalError while it lasts.',
      ),
      props.alarms.add(
        'WebhooksRefused',
        new cloudwatch.MathExpression({
          expression: 'denied + bad',
          usingMetrics: {
            denied: metric('WebhooksRefused', { ErrorType: 'AccessDenied' }),
            bad: metric('WebhooksRefused', { ErrorType: 'BadRequest' }),
          },
          period: PERIOD,
          label: 'Webhooks refused',
        }),
        20,
        `${stack}: 20 or more Twilio webhook calls refused in 5 minutes (bad signature or body). Either the auth ` +
          'token in SSM no longer matches Twilio\'s, the webhook URL changed, or someone is probing the URL.',
      ),
      props.alarms.add(
        'SweepsUnscheduled',
        metric('SweepsUnscheduled'),
        1,
        `${stack}: a revokeIdentity or syncIdentity could not queue its second sweep (ADR 012): a join that raced it ` +
          'may stand. The platform-api logs name the identity ("the sweep could not be scheduled"); call the ' +
          'operation again once the delay queue takes messages.',
      ),
      props.alarms.add(
        'AccessLogFailures',
        metric('AccessLogFailures'),
        1,
        `${stack}: membership changes were made but not written to the access log (ADR 021): contextAccess will not ` +
          'show them. The function logs name the identity ("membership changes not written to the access log"); ' +
          'check the table (throttling, permissions).',
      ),
      props.alarms.add(
        'SmsBudgetSpent',
        new cloudwatch.MathExpression({
          expression: 'codes + texts',
          usingMetrics: {
            codes: metric('SmsCodeBudgetReached'),
            texts: metric('SmsTextBudgetReached'),
          },
          period: PERIOD,
          label: 'SMS budget reached',
        }),
        1,
        `${stack}: the day's SMS budget is spent (sms/dailyCodes or sms/dailyTexts): verification codes are refused ` +
          'with TooManyRequests, or notification texts held, until 00:00 UTC. Either the deployment grew (raise the ' +
          'budget in SSM) or someone is making it send (look at PhoneCodesSent and at the sign-ups).',
      ),
    ];

    const graph = (title: string, left: cloudwatch.IMetric[], width = 8) =>
      new cloudwatch.GraphWidget({ title, left, width, height: 6, stacked: false });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${stack}-operations`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: [...alarms, ...props.alarms.alarms.filter((a) => !alarms.includes(a))], width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      graph('Tokens issued', [metric('ChatTokensIssued'), metric('VirgilTokensIssued'), metric('DevTokensIssued')]),
      graph('Context tokens refused, by errorType', byError('TokensRefused')),
      graph('Error answers, by errorType', byError('Errors')),
    );
    this.dashboard.addWidgets(
      graph('Requests, by function', perFunction('Requests')),
      graph('InternalError answers, by function', props.functions.map((f) =>
        metric('Errors', { Function: f, ErrorType: 'InternalError' }, 'Sum', f))),
      graph('Provisioning changes', [metric('ConversationsCreated'), metric('ParticipantsJoined'), metric('ParticipantsLeft')]),
    );
    this.dashboard.addWidgets(
      graph('Twilio requests', [metric('TwilioRequests'), metric('TwilioRetries'), metric('TwilioThrottled', {}, 'Sum', '429'), metric('TwilioServerErrors', {}, 'Sum', '5xx or none')]),
      graph('Twilio latency (ms)', [
        metric('TwilioLatency', {}, 'p50', 'p50'),
        metric('TwilioLatency', {}, 'p99', 'p99'),
        metric('TwilioLatency', {}, 'Maximum', 'max'),
      ]),
      graph('Limits, revocations and sweeps', sums(
        ['RateLimited'],
        ['Revocations'],
        ['Sweeps', 'second sweeps run'],
        ['SweepsUnscheduled', 'second sweeps not queued'],
        ['AccessLogFailures', 'access log entries not written'],
      )),
    );
    this.dashboard.addWidgets(
      graph('Events to the platform', sums(
        ['EventsQueued', 'queued'],
        ['EventsDelivered', 'delivered'],
        ['EventsFailedAttempts', 'attempts refused'],
        ['EventsDeadLettered', 'dead-lettered'],
        ['EventsNotQueued', 'lost (not queued)'],
      ), 24),
    );
    // What the notifier did with each notification, one line per channel the functions report
    // (the `Channel` dimension): a new channel appears without a change here.
    const byChannel = (outcome: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${NAMESPACE},Stack,Channel} Stack="${stack}" MetricName="Notifications${outcome}"', 'Sum', ${PERIOD.toSeconds()})`,
        usingMetrics: {},
        period: PERIOD,
        label: outcome,
      });
    this.dashboard.addWidgets(
      graph(
        'Requests refused by a limit, by limit',
        ['mints', 'email_codes', 'phone_codes', 'phone_checks', 'verify', 'sms_budget'].map((limit) =>
          metric('RateLimited', { Limit: limit }, 'Sum', limit)),
        24,
      ),
    );
    this.dashboard.addWidgets(
      graph('Notifications, by channel', NOTIFICATION_OUTCOMES.map(byChannel)),
      graph('Webhooks refused, by errorType', byError('WebhooksRefused')),
      graph('Notifier records handed back', [metric('NotifierRecordsFailed')]),
    );
    this.dashboard.addWidgets(
      graph('Text messages', sums(
        ['SmsStopped', 'STOP replies'],
        ['SmsRefused', 'refused by Twilio'],
        ['SmsTextBudgetReached', 'held: daily budget'],
        ['SmsNumberBudgetReached', 'refused or held: a number\'s daily share'],
        ['SmsCountryRefused', 'refused: country not allowed'],
      )),
      graph('Phone verification', sums(
        ['PhoneCodesSent'],
        ['PhonesVerified'],
        ['SmsCodeBudgetReached', 'refused: daily budget'],
      )),
    );
  }
}
