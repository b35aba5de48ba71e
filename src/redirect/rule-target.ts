// Where a link with redirect rules sends this visitor: the first matching rule's URL, else the
// link's own. Rules are compiled once per cached record (records are immutable and replaced on
// any change), so a hit costs the checks themselves and no parsing.
import type { IncomingMessage } from 'node:http';
import type { RedirectRecord } from '../domain/link.ts';
import { type CompiledRules, chooseRule, compileRules } from '../domain/redirect-rules.ts';
import { VisitFacts, type VisitFactsOptions } from './visit-facts.ts';

export class RuleTargets {
  private readonly compiled = new WeakMap<RedirectRecord, CompiledRules>();
  private readonly facts: VisitFacts;

  constructor(opts: VisitFactsOptions) {
    this.facts = new VisitFacts(opts);
  }

  /** The URL this request goes to (before forwardQuery), and the index of the rule that chose it (-1: none). */
  target(link: RedirectRecord, url: string, req: IncomingMessage): { url: string; rule: number } {
    if (link.rules === null) return { url: link.url, rule: -1 };
    let c = this.compiled.get(link);
    if (c === undefined) {
      c = compileRules(link.rules);
      this.compiled.set(link, c);
    }
    const rule = chooseRule(c, this.facts.visit(link.code, url, req, Date.now()));
    return { url: rule === -1 ? link.url : c.rules[rule]!.url, rule };
  }
}
