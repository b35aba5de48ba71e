#!/usr/bin/env node
// Launcher: Hop is written in TypeScript and run through tsx's loader, so there is no build
// step to forget and no stale output to run.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
