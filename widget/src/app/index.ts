/** The app chunk: the chat itself, handed to the loader. */
import { register } from '../registry';
import { Chat } from './chat';
import type { Mount } from './mount';

const mount: Mount = (root, options) => new Chat(root, options);
register('app', mount);
