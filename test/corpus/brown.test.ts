import assert from "node:assert/strict";
import { test } from "node:test";
import { brownFileToText, readDocuments } from "../../src/corpus/index.js";
import { collect } from "./helpers.js";

test("Brown: 500 documents with genres and groups, tags stripped, quotes and punctuation restored", async () => {
  const docs = await collect(readDocuments("brown"));
  assert.equal(docs.length, 500);
  assert.equal(new Set(docs.map((d) => d.id)).size, 500);
  assert.equal(docs[0].id, "brown:ca01");
  const genres: Record<string, number> = {};
  const groups: Record<string, number> = {};
  for (const d of docs) {
    genres[d.meta!.domain as string] = (genres[d.meta!.domain as string] ?? 0) + 1;
    groups[d.meta!.group as string] = (groups[d.meta!.group as string] ?? 0) + 1;
  }
  // Published Brown category sizes (Francis & Kucera 1979).
  assert.deepEqual(genres, {
    news: 44,
    editorial: 27,
    reviews: 17,
    religion: 17,
    hobbies: 36,
    lore: 48,
    belles_lettres: 75,
    government: 30,
    learned: 80,
    fiction: 29,
    mystery: 24,
    science_fiction: 6,
    adventure: 29,
    romance: 29,
    humor: 9,
  });
  assert.deepEqual(groups, { news: 88, nonfiction: 206, learned: 80, fiction: 126 });
  for (const d of docs) {
    // No POS tags survive (real words like "and/or" keep their slash).
    assert.doesNotMatch(d.text, /\w\/(at|nn|nns|np|vbd|in|jj|cc|rb|pps|dt|vb|cs|to)(-tl|-hl)?(\s|$)/, d.id);
    assert.doesNotMatch(d.text, /``|[^\d]''|;;|\?\?/, d.id); // '' stays only as inches (1/2'')
  }
  // Punctuation is attached to the word before it. (The Brown files themselves delete some numbers, e.g.
  // batting averages, which leaves a few " ," behind; allow those.)
  const all = docs.map((d) => d.text).join("\n");
  const spaced = all.match(/ [,.;:?!]/g)?.length ?? 0;
  const total = all.match(/[,.;:?!]/g)?.length ?? 0;
  assert.ok(spaced < total * 0.005, `${spaced} of ${total} punctuation marks follow a space`);
  const ca01 = docs[0].text;
  assert.ok(
    ca01.startsWith(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.\n\n',
    ),
  );
  // Paragraphs are tab-indented in the tagged files; two files (cf18, cg21) have no indentation at all.
  assert.ok(docs.filter((d) => d.text.includes("\n\n")).length >= 498, "paragraph breaks kept");
});

test("Brown detokenization: headlines become paragraphs; continuation lines join the paragraph", () => {
  const raw =
    "\n\n\tHe/pps said/vbd ``/`` yes/rb ''/'' (/( twice/rb )/) ./.\nThen/rb left/vbd ./.\n\n\nBig/jj-hl news/nn-hl\nIt/pps rained/vbd ;/. ;/. and/or/cc 1/2/cd fell/vbd ?/. ?/.\n";
  assert.equal(
    brownFileToText(raw),
    'He said "yes" (twice). Then left.\n\nBig news\n\nIt rained; and/or 1/2 fell?',
  );
});
