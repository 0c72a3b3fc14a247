/**
 * The Twilio chunk (cloud mode only, loaded on demand by the app): the Conversations SDK and
 * the transport over it, handed to the app through the loader's registry.
 */
import { Client } from '@twilio/conversations';
import { register } from '../registry';
import type { TransportListener } from '../app/transport';
import { TwilioTransport, type SdkClient } from './transport';

register('twilio', (listener: TransportListener) =>
  new TwilioTransport((token) => new Client(token) as unknown as SdkClient, listener),
);
