// A WordPiece vocabulary from a raw-text corpus (corpus-vocab on .jsonl / header .csv data), kept simple:
//
//   1. the words: the corpus through BertTokenizer's basic tokenization (lower-cased, accents stripped,
//      every CJK ideograph and punctuation mark a word of its own);
//   2. characters first, so that every word can be spelled: each character that starts a word (`c`) and
//      each that continues one (`##c`), most frequent first;
//   3. then whole words by frequency (seen at least twice), while there is room in `vocabSize`.
//
// Specials first ([PAD] [UNK] [CLS] [SEP] [MASK], as for GAIIC data), then every entry ordered by how
// often the final tokenizer produces it on the corpus (so vocabulary pruning stays a prefix cut);
// token_counts.json holds those counts. A word left out is spelled from a shorter word and pieces
// (greedy longest match: "cats" -> "cat ##s"), one that has a character left out is [UNK].
import { BertTokenizer } from './tokenizer';
import { DEFAULT_SPECIAL, SPECIAL_TOKENS, type Vocab } from './vocab';

export const DEFAULT_TEXT_VOCAB_SIZE = 30_000;

function byCount(m: Map<string, number>): [string, number][] {
  return [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function buildTextVocab(texts: string[], vocabSize = DEFAULT_TEXT_VOCAB_SIZE): Vocab {
  const specials = new Map<string, number>(SPECIAL_TOKENS.map((t, i) => [t, i]));
  const basic = new BertTokenizer(specials);
  const words = new Map<string, number>();
  for (const t of texts) for (const w of basic.basicTokenize(t)) words.set(w, (words.get(w) ?? 0) + 1);
  const chars = new Map<string, number>();
  for (const [w, c] of words) {
    if (specials.has(w)) continue;
    Array.from(w).forEach((ch, i) => {
      const k = i === 0 ? ch : '##' + ch;
      chars.set(k, (chars.get(k) ?? 0) + c);
    });
  }
  const room = Math.max(0, vocabSize - SPECIAL_TOKENS.length);
  const entries: string[] = byCount(chars)
    .slice(0, room)
    .map(([t]) => t);
  const have = new Set(entries);
  for (const [w, c] of byCount(words)) {
    if (entries.length >= room || c < 2) break;
    if (!have.has(w) && !specials.has(w) && Array.from(w).length > 1) {
      entries.push(w);
      have.add(w);
    }
  }
  // Order by how often the tokenizer of this vocabulary uses each entry.
  const index = new Map<string, number>([...SPECIAL_TOKENS, ...entries].map((t, i) => [t, i]));
  const tok = new BertTokenizer(index);
  const used = new Map<string, number>(entries.map((e) => [e, 0]));
  for (const [w, c] of words) {
    if (specials.has(w)) continue;
    for (const piece of tok.wordpiece(w)) if (used.has(piece)) used.set(piece, used.get(piece)! + c);
  }
  const ordered = byCount(used);
  const tokens = [...SPECIAL_TOKENS, ...ordered.map(([t]) => t)];
  const counts = [...SPECIAL_TOKENS.map(() => 0), ...ordered.map(([, c]) => c)];
  return { tokens, counts, index: new Map(tokens.map((t, i) => [t, i])), special: DEFAULT_SPECIAL };
}
