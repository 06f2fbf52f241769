// The contract's JavaScript example (API_REFERENCE.md, "Subscribe to Events"), with the
// `eventsource` package standing in for the browser's EventSource. Prints one JSON line per event.
import { EventSource } from "eventsource";

const BASE_URL = process.argv[2] ?? "http://localhost:8000/api";
const TOKEN = process.argv[3]; // browsers' EventSource cannot set headers: the token goes in the URL
const query = TOKEN ? `?access_token=${encodeURIComponent(TOKEN)}` : "";
const eventSource = new EventSource(`${BASE_URL}/sse/events${query}`);
const print = (name) => (event) =>
  console.log(JSON.stringify({ event: name, id: event.lastEventId, data: JSON.parse(event.data) }));

eventSource.addEventListener("connected", print("connected"));
eventSource.addEventListener("incident_created", print("incident_created"));
eventSource.addEventListener("incident_updated", print("incident_updated"));
eventSource.addEventListener("action_executed", print("action_executed"));
eventSource.addEventListener("heartbeat", () => {});
eventSource.onerror = () => console.error("SSE connection error");
