import { section } from './core.js';

export const logsSection = section({});
