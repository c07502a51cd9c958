let text = "";
const f = await Deno.open("/tmp/replay.log", { write: true, create: true, truncate: true });
for (let i = 0; i < 1_000_000; i++) {
  text += `48230@1700000000.${String(i % 1e6).padStart(6, "0")}:kvm_convert_memory start 0x${(0x8100000000 + (i % 65536) * 4096).toString(16)} size 0x${((1 + i % 16) * 4096).toString(16)} ${i & 1 ? "private_to_shared" : "shared_to_private"}\n`;
  if (text.length > 1 << 20) { await f.write(new TextEncoder().encode(text)); text = ""; }
}
await f.write(new TextEncoder().encode(text)); f.close();
