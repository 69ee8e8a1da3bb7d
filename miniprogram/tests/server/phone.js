// `node phone.js <server> <scan|confirm|deny> <scene> <nickname>`: one step of the mini program,
// made by its own request code (utils/api.js), for tests/test_browser_phone.py.
const { phone } = require("./wx-node");

async function main() {
  const [server, step, scene, nickname] = process.argv.slice(2);
  phone(server);
  global.wxUser = nickname;
  const api = require("../../utils/api");
  const code = await api.code();
  const answer = step === "scan" ? await api.scan(scene, code)
    : step === "deny" ? await api.deny(scene, code)
    : await api.pushCode(scene, code, { nickName: nickname });
  process.stdout.write(JSON.stringify(answer) + "\n");
}

main().catch((error) => { process.stderr.write(`${error.code || ""} ${error.message}\n`); process.exit(1); });
