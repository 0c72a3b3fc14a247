import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acceptFinding } from './nag';

export interface NotificationAlarmsProps {
  /** Dead-letter queues: anything in one is an event that was given up on. */
  readonly deadLetterQueues: Record<string, sqs.IQueue>;
  /** Work queues: an old message means the notifier is not keeping up, or is failing. */
  readonly workQueues: Record<string, sqs.IQueue>;
  /** Where alarm emails go; without it the alarms only show in CloudWatch. */
  readonly email?: string;
}

/**
 * What an operator must hear about without reading logs: notification events that were given
 * up on, and a notifier that has fallen behind. Alarms go to an SNS topic (email when given).
 */
export class NotificationAlarms extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly action: actions.SnsAction;

  constructor(scope: Construct, id: string, props: NotificationAlarmsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', { enforceSSL: true });
    acceptFinding(
      this.topic,
      'SNS2',
      'Alarm messages carry only alarm names and states. CloudWatch cannot publish to a topic ' +
        'under the AWS-managed SNS key, and a customer key costs more than these messages are worth.',
    );
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    const action = new actions.SnsAction(this.topic);
    this.action = action;

    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      this.add(
        `${name}NotEmpty`,
        queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
        1,
        name.startsWith('PlatformEvents')
          ? `${name}: events the platform did not take within a day (or that failed 5 times); the deliver-events ` +
              "logs say why (\"event dead-lettered\"). Fix the platform's receiver, then redrive the queue."
          : `${name}: notification events were given up on after 5 tries; the notify function's logs say why.`,
      );
    }
    for (const [name, queue] of Object.entries(props.workQueues)) {
      this.add(
        `${name}Behind`,
        queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
        // A flush waits up to 15 minutes by design; a message older than 30 is stuck.
        30 * 60,
        `${name}: the oldest message is over 30 minutes old; the notifier is failing or throttled.`,
      );
    }
  }

  /** An alarm on `metric` reaching `threshold`, to the topic (missing data: all is well). */
  add(id: string, metric: cloudwatch.IMetric, threshold: number, description: string, evaluationPeriods = 1): cloudwatch.Alarm {
    const action = this.action;
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.push(alarm);
    return alarm;
  }
}
