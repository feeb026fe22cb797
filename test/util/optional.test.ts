import assert from "node:assert/strict";
import { test } from "node:test";
import { inCi, optionalTool } from "../helpers/optional.js";

test("optional tools: locally a missing tool skips with its reason, under CI=true it fails", () => {
  assert.equal(inCi({ CI: "true" }), true);
  assert.equal(inCi({ CI: "1" }), true);
  assert.equal(inCi({ CI: "false" }), false);
  assert.equal(inCi({ CI: "" }), false);
  assert.equal(inCi({}), false);

  const present = optionalTool("present", () => true, "nothing", {});
  assert.equal(present.skip, false);
  present.require();

  const local = optionalTool("gone-tool", () => "no /usr/bin/gone", "apt-get install gone", {});
  assert.equal(local.available, false);
  assert.match(
    String(local.skip),
    /gone-tool is not available \(no \/usr\/bin\/gone\); install: apt-get install gone/,
  );
  assert.throws(() => local.require(), /gone-tool is not available/);

  const ci = optionalTool("gone-tool", () => false, "apt-get install gone", { CI: "true" });
  assert.equal(ci.skip, false, "never skips under CI");
  assert.throws(() => ci.require(), /gone-tool is not available \(not found\).*CI=true/);

  const throws = optionalTool(
    "thrower",
    () => {
      throw new Error("probe blew up");
    },
    "x",
    {},
  );
  assert.match(String(throws.skip), /probe blew up/);
});
