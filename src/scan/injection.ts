/**
 * Prompt-injection detector for result values: text a target returns that carries instructions
 * aimed at the agent reading it rather than data. Pure and bounded: at most MAX_SCAN_CHARS of a
 * value are read, every pattern is linear (no nested quantifiers over the same characters), and
 * the answer is a list of finding kinds, never the matched text (results are never logged).
 *
 * Signals:
 * - instruction: "ignore previous instructions"-style phrases in several phrasings, role
 *   switches ("you are now …", "new instructions:"), chat-template markers (`<|im_start|>`,
 *   `[INST]`, `</system>`), exfiltration and secrecy asks aimed at an assistant;
 * - tool_call: tool-call look-alikes (`{"name": …, "arguments": …}`, `"tool_calls"`,
 *   `<function_calls>`, `<invoke name=…>`, `<tool_call>`);
 * - hidden_unicode: Unicode tag characters U+E0000–U+E007F (invisible ASCII), bidi overrides
 *   and isolates, or several zero-width characters;
 * - base64_blob: a run of 120+ base64 characters (mixed case and digits), a carrier for
 *   instructions a filter would not read.
 *
 * Matching runs on a normalised copy: NFKC, zero-width characters and tags removed, runs of
 * whitespace collapsed, lower case; so `I\u200Bgnore  ALL previous` is still read as the phrase.
 */

export type InjectionKind = "instruction" | "tool_call" | "hidden_unicode" | "base64_blob";
export const INJECTION_KINDS: readonly InjectionKind[] = ["instruction", "tool_call", "hidden_unicode", "base64_blob"];

export interface InjectionFinding {
  readonly kinds: readonly InjectionKind[];
}

/** Only the first this many characters of a value are read (bounded work per value). */
export const MAX_SCAN_CHARS = 65_536;
/** A base64 run at least this long is a blob. */
const MIN_BLOB = 120;

const VERB = String.raw`(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|discard|neglect)`;
const SCOPE = String.raw`(?:all|any|every|each|the|your|my|these|those|this|of)`;
const WHEN = String.raw`(?:previous|prior|preceding|above|following|earlier|former|past|initial|original|old|existing|system|safety|developer|given)`;
const WHAT = String.raw`(?:instructions?|prompts?|rules?|directions?|directives?|guidelines?|guidance|context|commands?|orders|messages?|constraints?|restrictions?|programming|policies|polic(?:y|ies)|system prompt)`;

/** Phrases aimed at an agent, on the normalised text. Each is linear. */
const INSTRUCTION_PATTERNS: readonly RegExp[] = [
  // ignore all previous instructions / disregard the above / forget your rules
  new RegExp(String.raw`\b${VERB}\s+(?:(?:${SCOPE}|and)\s+){0,3}(?:${WHEN}\s+(?:(?:and|or|&)\s+)?){1,3}(?:\w+\s+)?${WHAT}\b`),
  // ignore the above (and say …) / disregard the preceding.
  /\b(?:ignore|disregard|forget) (?:all of |everything )?(?:the )?(?:above|preceding|previous)(?:\s*(?:and\b|[.,;:!]|$))/,
  new RegExp(String.raw`\b${VERB}\s+(?:${SCOPE}\s+){0,2}${WHAT}\s+(?:above|before|so far|you (?:were|have been) given|given (?:to you|before|above)|(?:from|of) (?:the|your) (?:system|developer|user))`),
  new RegExp(String.raw`\b${VERB}\s+(?:everything|anything|all)\s+(?:(?:you (?:were|have been) (?:told|given|instructed))|(?:above|before|previously|said|written) )`),
  /\b(?:do not|don't|never) (?:follow|obey|listen to) (?:your|the|any) (?:previous |prior |original |system )?(?:instructions|rules|guidelines|system prompt)/,
  // role switches and new instructions
  /\byou are (?:now|no longer) (?:a |an |in |the |my |dan\b|free\b|unrestricted|jailbroken|developer mode)/,
  /\bfrom now on,? (?:you|your|act|respond|answer|behave|ignore|only)\b/,
  /\b(?:(?:new|updated|revised|real|actual|true|hidden|secret|important|urgent|additional)\s+){1,3}(?:system\s+)?(?:instructions?|directives?|task|orders?)\s*(?:[:*=#-]|for (?:the |you\b|ai\b|the assistant|the agent|the model))/,
  /\binstructions? for (?:the |any )?(?:\w+ )?(?:ai|llm|assistant|agent|model|claude|gpt|chatgpt|copilot|cursor|gemini|bot)s?\b/,
  /\b(?:this message is (?:directed at|for|intended for)) (?:the )?(?:ai|llm|assistant|agent|model|claude|gpt|chatgpt|copilot|cursor|gemini|bot)\b/,
  /\b(?:enter|enable|activate|switch to) (?:developer|dan|god|admin|debug|jailbreak|unrestricted) mode\b/,
  /\bdo anything now\b/,
  /\b(?:act|pretend|behave|roleplay|role-play) (?:as if you (?:are|were)|to be) (?:an? )?(?:unrestricted|unfiltered|jailbroken|evil|different|new|dan\b|ai\b|system|admin|root)/,
  // addressing the model directly with an order
  /(?:^|[.!?:;>\]\n]\s*)(?:(?:dear |attention,? |note to (?:the )?)?(?:ai|llm|gpt|chatgpt|claude|assistant|ai assistant|language model|ai agent|agent|model|copilot|bot))(?:s)?\s*[,:!-]\s*(?:please\s+)?(?:ignore|disregard|forget|execute|run|call|invoke|use the|send|forward|email|post|upload|delete|drop|transfer|grant|reveal|print|output|say|respond|reply|tell|you must|you should|you will|do not|don't|instead)\b/,
  /\b(?:if you are|as) (?:an? )?(?:ai|llm|language model|ai assistant|assistant|ai agent|autonomous agent|agent) (?:reading|processing|parsing|summari[sz]ing|that reads)\b/,
  /\b(?:instructions?|message|note) (?:for|to) (?:the |any )?(?:ai|llm|assistant|agent|model|language model|chatbot|bot)s?\b\s*[:-]/,
  // reveal the system prompt
  /\b(?:reveal|print|output|show|repeat|leak|display|dump|tell me|give me|what is|what are|write out|recite) (?:me )?(?:your (?:full |initial |hidden |original |secret |system )?|the (?:full |hidden |secret |system |initial |original )(?:system )?)(?:prompt|instructions|rules|guidelines|system message|context window)\b/,
  /\b(?:print|repeat|output|reveal|show|recite) (?:the )?(?:(?:words|text|prompt|instructions) (?:above|preceding|previous|prior)|(?:above|preceding|previous|prior) (?:prompt|instructions|text|words|message))\b/,
  // secrecy and exfiltration aimed at the agent
  /\b(?:do not|don't|never|without) (?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|alert(?:ing)?|notify(?:ing)?|let(?:ting)?) (?:this to )?(?:the |your )?(?:user|human|operator|admin|developer|owner)s?\b/,
  /\b(?:send|forward|email|post|upload|exfiltrate|transmit|leak|copy) (?:all |every |the |any |your |their )?(?:user(?:'s)? |customer |private |sensitive |stored )?(?:data|credentials|passwords?|secrets?|api keys?|tokens?|conversation|chat history|emails|files|database|records|env(?:ironment)? variables) (?:to|via|into|at) (?:https?:|www\.|[a-z0-9-]+\.[a-z]{2,}|this|the following|my|an? (?:external|remote))/,
  // chat-template and role markers
  /<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>/,
  /\[\/?(?:inst|sys)\]|<<\/?sys>>/,
  /<\/?(?:system|assistant|system_prompt|instructions?|admin|developer|important)>/,
  /\[(?:system|assistant)\]\(#/,
  /(?:^|\s)#{2,}\s*(?:system|new instructions?|instructions?)\s*(?:#|:|message\b|prompt\b|$)/,
  /(?:^|\s)(?:system|assistant)\s*:\s*(?:you|ignore|forget|from now|new|override|disregard)\b/,
];

/** Tool-call look-alikes, on the normalised text. */
const TOOL_PATTERNS: readonly RegExp[] = [
  /"(?:name|tool|tool_name|function|function_name|action)"\s*:\s*"[^"\n]{1,80}"\s*,\s*"(?:arguments|args|parameters|params|input|action_input|tool_input)"\s*:/,
  /"(?:tool_calls|function_call|tool_use|tool_call|functioncall)"\s*:/,
  /"type"\s*:\s*"(?:function|tool_use|tool_call)"/,
  /<\/?(?:function_calls|function_call|tool_call|tool_use|tool_calls|antml:invoke|antml:function_calls)\b/,
  /<invoke\s+name\s*=/,
  /<parameter\s+name\s*=/,
  /\b(?:call|invoke|run|use|execute) (?:the )?(?:tool|function) [`'"]?[a-z_][a-z0-9_.]{1,60}[`'"]?\s*\(?\s*(?:with|using)\b/,
];

/** Characters that change how text reads without showing: bidi overrides and isolates. */
const BIDI = /[\u202A-\u202E\u2066-\u2069]/u;
const ZERO_WIDTH = /[\u200B-\u200D\u2060\u180E\uFEFF]/gu;
const TAGS = /[\u{E0000}-\u{E007F}]/u;
const TAGS_G = /[\u{E0000}-\u{E007F}]/gu;
/** Zero-width characters this many or more in one value (one ZWJ in an emoji is ordinary). */
const MIN_ZERO_WIDTH = 3;
const BASE64_RUN = /[A-Za-z0-9+/_-]{120,}={0,2}/g;

const ASCII = /^[\t\n\r\x20-\x7e]*$/;
/** A data: URI of an image: base64 by design, not a carrier of text. */
const IMAGE_DATA_URI = /data(?::|%3a)image(?:\/|%2f)[a-z0-9.+-]{1,40}(?:;|%3b)base64(?:,|%2c|%)/i;

/** A cheap first look: most values have none of the letters any pattern needs. */
const PREFILTER = /[<[{#"]|ignor|disregard|forget|overrid|bypass|you are|from now|instruction|mode|anything now|act |pretend|behave|role|ai|llm|gpt|claude|assistant|agent|model|bot|reveal|print|prompt|tell|inform|send|forward|email|post|upload|exfil|leak|copy|call|invoke|run|use|execute|follow|obey|system|[\u200B-\u200D\u2060\u180E\uFEFF\u202A-\u202E\u2066-\u2069]|[\u{E0000}-\u{E007F}]|[A-Za-z0-9+/]{120}/iu;

export function normalize(text: string): string {
  // NFKC folds look-alikes (fullwidth letters, ligatures); plain ASCII has none to fold.
  return (ASCII.test(text) ? text : text.normalize("NFKC")).replace(ZERO_WIDTH, "").replace(TAGS_G, "").replace(/\s+/g, " ").toLowerCase();
}

/** Scan one value. Undefined when nothing is found (the common case, allocation-free after the prefilter). */
export function scanInjection(value: string): InjectionFinding | undefined {
  const text = value.length > MAX_SCAN_CHARS ? value.slice(0, MAX_SCAN_CHARS) : value;
  if (text.length < 8 || !PREFILTER.test(text)) return undefined;
  const kinds: InjectionKind[] = [];
  if (TAGS.test(text) || BIDI.test(text) || countZeroWidth(text) >= MIN_ZERO_WIDTH) kinds.push("hidden_unicode");
  if (hasBase64Blob(text)) kinds.push("base64_blob");
  const norm = normalize(text);
  if (INSTRUCTION_PATTERNS.some((re) => re.test(norm))) kinds.push("instruction");
  if (TOOL_PATTERNS.some((re) => re.test(norm))) kinds.push("tool_call");
  return kinds.length === 0 ? undefined : { kinds };
}

function countZeroWidth(text: string): number {
  let n = 0;
  for (const _ of text.matchAll(ZERO_WIDTH)) if (++n >= MIN_ZERO_WIDTH) break;
  return n;
}

/** A base64 run of MIN_BLOB+ characters that mixes upper case, lower case and digits (not a hex hash or a word). */
function hasBase64Blob(text: string): boolean {
  BASE64_RUN.lastIndex = 0;
  for (let m = BASE64_RUN.exec(text); m !== null; m = BASE64_RUN.exec(text)) {
    const run = m[0];
    if (run.length < MIN_BLOB || IMAGE_DATA_URI.test(text.slice(Math.max(0, m.index - 60), m.index + 2))) continue;
    // Base64 of text or binary is dense in capitals and digits; a long URL path or identifier is not.
    let upper = 0;
    let digits = 0;
    for (let i = 0; i < run.length; i++) {
      const c = run.charCodeAt(i);
      if (c >= 65 && c <= 90) upper++;
      else if (c >= 48 && c <= 57) digits++;
    }
    if (upper >= run.length * 0.2 && digits >= run.length * 0.03 && /[a-z]/.test(run)) return true;
  }
  return false;
}
