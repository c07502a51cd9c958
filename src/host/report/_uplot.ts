/**
 * uPlot (npm `uplot`, MIT, pinned in deno.json and deno.lock) as text, for
 * inlining into the HTML report: its minified browser build, its stylesheet
 * and its licence. Deno's text imports read them from the npm package itself,
 * so nothing is copied into this repository and the lockfile's integrity hash
 * covers what ends up in every report.
 *
 * @module
 */

import js from "npm:uplot@1.6.32/dist/uPlot.iife.min.js" with { type: "text" };
import css from "npm:uplot@1.6.32/dist/uPlot.min.css" with { type: "text" };
import license from "npm:uplot@1.6.32/LICENSE" with { type: "text" };

/** uPlot's minified browser build (defines the global `uPlot`). */
export const UPLOT_JS: string = js;
/** uPlot's stylesheet. */
export const UPLOT_CSS: string = css;
/** uPlot's licence text (MIT). */
export const UPLOT_LICENSE: string = license;
