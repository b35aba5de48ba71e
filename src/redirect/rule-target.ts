// Where a link with redirect rules sends this visitor: the first matching rule's URL, else the
// link's own. Rules are compiled once per cached record (records are immutable and replaced on
// any change), so a hit costs the checks themselves and no parsing.
import type { IncomingMessage } from 'node:http';
import { clickCode } from '../domain/clicks.ts';
import { linkKey } from '../domain/domains.ts';
import type { RedirectRecord } from '../domain/link.ts';
import { type CompiledRules, chooseRule, compileRules } from '../domain/redirect-rules.ts';
import { VisitFacts, type VisitFactsOptions } from './visit-facts.ts';

interface Compiled {
  readonly rules: CompiledRules;
  /** What a click hands the sink per outcome (index rule + 1), made once: no string per click. */
  readonly clickCodes: string[];
}

export class RuleTargets {
  private readonly compiled = new WeakMap<RedirectRecord, Compiled>();
  private readonly facts: VisitFacts;

  constructor(opts: VisitFactsOptions) {
    this.facts = new VisitFacts(opts);
  }

  /** The URL this request goes to (before forwardQuery), and the index of the rule that chose it (-1: none). */
  target(link: RedirectRecord, url: string, req: IncomingMessage): { url: string; rule: number } {
    if (link.rules === null) return { url: link.url, rule: -1 };
    const c = this.compile(link);
    const rule = chooseRule(c.rules, this.facts.visit(link.code, url, req, Date.now()));
    return { url: rule === -1 ? link.url : c.rules.rules[rule]!.url, rule };
  }

  /** The click code of a visit of a link with rules that `rule` chose (-1: none). */
  clickCode(link: RedirectRecord, rule: number): string {
    const codes = this.compile(link).clickCodes;
    let code = codes[rule + 1];
    if (code === undefined) {
      code = clickCode(linkKey(link.domain, link.code), rule + 1);
      codes[rule + 1] = code;
    }
    return code;
  }

  private compile(link: RedirectRecord): Compiled {
    let c = this.compiled.get(link);
    if (c === undefined) {
      c = { rules: compileRules(link.rules ?? []), clickCodes: [] };
      this.compiled.set(link, c);
    }
    return c;
  }
}
