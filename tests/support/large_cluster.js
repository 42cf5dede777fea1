events.close();
const [count, perNode] = arguments;
const nodes = [];
for (let n = 0; n < count; n++) {
  const tasks = [];
  for (let t = 0; t < (n === count - 1 ? 12 : perNode); t++) {
    tasks.push({ id: `t${n}-${t}`, service: ["quotes-service", "web", "cache"][t % 3],
      slot: String(n * perNode + t + 1), image: "swarmlab/quotes:latest", state: "running",
      lost: false, container: "" });
  }
  nodes.push({ hostname: n < 3 ? `manager-${n + 1}` : `worker-${n - 2}`, role: n < 3 ? "manager" : "worker",
    manager_status: n === 0 ? "leader" : "", availability: "active", engine_version: "20.10.24+dfsg1",
    state: n === 7 ? "down" : "ready", container: "", container_state: "running",
    usage: { cpu_percent: 1.5, memory_bytes: 40 << 20, memory_limit: 0, net_rx_bytes: 0, net_tx_bytes: 0 },
    tasks });
}
render({ cluster: "large", status: "ok", message: "", nodes });
const columns = [...document.querySelectorAll("[data-node]")];
const boxes = [...document.querySelectorAll(".task")];
const tops = columns.map(c => Math.round(c.getBoundingClientRect().top));
const crowded = columns[columns.length - 1];
return {
  columns: columns.length,
  boxes: boxes.length,
  rows: new Set(tops).size,
  perRow: tops.filter(t => t === tops[0]).length,
  crowded: [...crowded.querySelectorAll(".task")].map(b => `${b.dataset.service}×${b.dataset.count || 1}`).join(" "),
  overflowsPage: document.documentElement.scrollWidth > window.innerWidth,
  clippedBoxes: boxes.filter(b => b.scrollWidth > b.clientWidth + 1).length,
  minFontPx: Math.min(...boxes.map(b => parseFloat(getComputedStyle(b).fontSize))),
};
