// A small hand-written SVG plot (no external tools): linear or log axes with ticks and grid, polyline series,
// labelled points and a legend. Enough for the tune report's roofline and best-so-far charts; the output is plain
// SVG 1.1 that GitHub and browsers render.
#pragma once
#include <string>
#include <vector>

namespace mf {

struct SvgPoint {
    double x = 0, y = 0;
};

class SvgPlot {
public:
    SvgPlot(std::string title, std::string x_label, std::string y_label, int width = 760, int height = 460);

    void x_axis(double lo, double hi, bool log);
    void y_axis(double lo, double hi, bool log);
    // A polyline; dashed for secondary roofs. `color` is any SVG colour.
    void line(const std::vector<SvgPoint>& pts, const std::string& color, const std::string& name, bool dashed = false,
              double width = 2);
    // A marker (filled or hollow circle) with an optional text label beside it.
    void point(SvgPoint p, const std::string& color, const std::string& label, bool filled = true);
    // A text note placed at data coordinates.
    // anchor: "start", "middle" or "end" (SVG text-anchor).
    void note(SvgPoint p, const std::string& text, const std::string& color = "#444",
              const std::string& anchor = "start");

    std::string render() const;

    // Distinct colours for series i = 0, 1, ...
    static std::string palette(int i);

private:
    double px(double x) const;
    double py(double y) const;
    std::string title_, x_label_, y_label_;
    int w_, h_;
    double x0_ = 0, x1_ = 1, y0_ = 0, y1_ = 1;
    bool xlog_ = false, ylog_ = false;
    std::string body_;
    std::vector<std::pair<std::string, std::string>> legend_;  // (name, colour)
    std::vector<bool> legend_dashed_;
};

// "1.2 T", "350 G", "15 M": engineering notation for tick and table labels.
std::string si_number(double v, int digits = 3);
// Escapes &, <, > and quotes for SVG/XML text.
std::string xml_escape(const std::string& s);

}  // namespace mf
