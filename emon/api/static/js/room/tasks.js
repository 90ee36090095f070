// Room tasks (GET /api/v1/tasks, `task` events on the stream): what a person in the room must do by a
// deadline (call the victim, obtain a fresh fix), with a countdown and a "done" action with a note.
import { prioLabel, t } from "../i18n.js";
import { el, fmtDuration } from "../util.js";

const RANK = { critical: 0, high: 1, normal: 2, low: 3 };

/** Seconds until the task's deadline at ``nowMs`` (negative: overdue). */
export function taskLeft(task, nowMs) {
  return (Date.parse(task.deadline) - nowMs) / 1000;
}
export function taskCountdown(task, nowMs) {
  const left = taskLeft(task, nowMs);
  return left >= 0 ? fmtDuration(left) : `${t("overdue")} ${fmtDuration(-left)}`;
}

/** Open tasks, the most urgent first: priority, then the deadline that runs out first (time is an argument). */
export function openTasks(tasks, nowMs) {
  return [...tasks].filter((x) => x.state === "open").sort((a, b) =>
    (RANK[a.priority] ?? 9) - (RANK[b.priority] ?? 9) || taskLeft(a, nowMs) - taskLeft(b, nowMs));
}

/** One task row: what to do (by kind, translated), which case, the countdown and the "done" button. */
export function taskRow(task, nowMs, onDone) {
  const left = taskLeft(task, nowMs);
  const label = t(`task_${task.kind}`) === `task_${task.kind}` ? task.title : t(`task_${task.kind}`);
  return el("li", { class: `task-row prio-${task.priority}`, "data-task": task.task_id },
    el("span", { class: "task-title" }, label),
    el("span", { class: `task-countdown${left < 0 ? " overdue" : ""}`, "data-task-countdown": task.task_id },
      taskCountdown(task, nowMs)),
    el("span", { class: "task-meta" }, `${t("case")} ${task.case_id} · ${prioLabel(task.priority)}`,
      task.escalation_level > 0 ? el("span", { class: "badge b-esc" }, t("escalated")) : null),
    el("button", { type: "button", class: "task-done", onclick: () => onDone(task) }, t("task_done")));
}
