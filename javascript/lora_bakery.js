// LoRA Bakery: progress bars and live previews for long jobs, the way A1111's Train tab does it
// (javascript/textualInversion.js + progressbar.js). A button wired with
//     _js="(...a) => lora_bakery_submit('bake', a)"   (gradio 4 / Forge: js=...)
// gets a fresh task id as its first input (the Python handler, wrapped with A1111Host.gpu_call,
// registers it with the webui's progress API) and the bar/preview are drawn from
// /internal/progress while the job runs. Element ids, for a sub-tab key KEY:
//     #lora_bakery_KEY_output    the output block the progress bar is drawn above (required)
//     #lora_bakery_KEY_gallery   gallery that receives the live preview (optional)
//     #lora_bakery_KEY_progress  HTML element that receives the multi-line textinfo (optional)
//     #lora_bakery_KEY_error     cleared at start (optional)
//     #lora_bakery_KEY_start / #lora_bakery_KEY_interrupt   swapped while running (optional)
// Outside A1111 (standalone app) requestProgress does not exist: only the task id is made.

function lora_bakery_el(key, part) {
    var app = typeof gradioApp === "function" ? gradioApp() : document;
    return app.getElementById("lora_bakery_" + key + "_" + part);
}

function lora_bakery_task_id() {
    if (typeof randomId === "function") {
        return randomId();
    }
    return "task(" + Math.random().toString(36).slice(2, 9) + Math.random().toString(36).slice(2, 9) + ")";
}

function lora_bakery_show_buttons(key, running) {
    var start = lora_bakery_el(key, "start");
    var interrupt = lora_bakery_el(key, "interrupt");
    if (start) start.style.display = running ? "none" : "block";
    if (interrupt) interrupt.style.display = running ? "block" : "none";
}

function lora_bakery_submit(key, args) {
    var id = lora_bakery_task_id();
    var error = lora_bakery_el(key, "error");
    if (error) error.innerHTML = "";
    var output = lora_bakery_el(key, "output");
    if (output && typeof requestProgress === "function") {
        var info = lora_bakery_el(key, "progress");
        lora_bakery_show_buttons(key, true);
        requestProgress(id, output, lora_bakery_el(key, "gallery"), function() {
            lora_bakery_show_buttons(key, false);
        }, function(progress) {
            if (info) info.innerHTML = progress.textinfo || "";
        });
    }
    var res = Array.from(args || []);
    res[0] = id;
    return res;
}
