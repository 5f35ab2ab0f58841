// One session's player: play and pause, the step being heard highlighted, a tapped step played from its start.
"use strict";

(function () {
  const audio = document.getElementById("audio");
  const toggle = document.getElementById("toggle");
  const icon = toggle.querySelector(".icon");
  const clock = document.getElementById("clock");
  const steps = Array.from(document.querySelectorAll(".step"));
  const starts = steps.map((step) => parseFloat(step.dataset.start));
  const total = clock.textContent.split(" / ")[1];
  let current = -1;

  function clockOf(seconds) {
    const whole = Math.floor(seconds);
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const rest = String(whole % 60).padStart(2, "0");
    return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
  }

  // The last step that has started; a small margin so a seek to a step's start lands in it.
  function stepAt(time) {
    let found = 0;
    starts.forEach((start, index) => {
      if (start <= time + 0.05) found = index;
    });
    return found;
  }

  function show() {
    clock.textContent = `${clockOf(audio.currentTime)} / ${total}`;
    if (!steps.length) return;
    const index = stepAt(audio.currentTime);
    if (index === current) return;
    if (current >= 0) {
      steps[current].classList.remove("current");
      steps[current].removeAttribute("aria-current");
    }
    current = index;
    steps[index].classList.add("current");
    steps[index].setAttribute("aria-current", "step");
    steps[index].scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function showState() {
    const playing = !audio.paused;
    icon.className = playing ? "icon pause" : "icon play";
    toggle.setAttribute("aria-label", playing ? "Pause" : "Play");
  }

  toggle.addEventListener("click", () => {
    if (audio.paused) audio.play().catch(showState);
    else audio.pause();
  });
  steps.forEach((step, index) => {
    step.addEventListener("click", () => {
      audio.currentTime = starts[index];
      show();
      audio.play().catch(showState);
    });
  });
  ["timeupdate", "seeking", "seeked", "loadedmetadata"].forEach((name) => audio.addEventListener(name, show));
  ["play", "pause", "ended"].forEach((name) => audio.addEventListener(name, showState));

  // The lock screen and headphone buttons of a phone show and control this session.
  if ("mediaSession" in navigator) {
    const cover = document.querySelector(".cover");
    navigator.mediaSession.metadata = new MediaMetadata({
      title: document.querySelector("h1").textContent,
      artist: "voiceguide",
      artwork: cover ? [{ src: cover.src }] : [],
    });
  }
  show();
})();
