package fluorecon;

import ij.IJ;
import ij.gui.Plot;
import ij.gui.PlotWindow;

import java.util.ArrayList;
import java.util.Locale;

/**
 * Progress of a training: everything {@link JavaProgress} shows, plus the loss per epoch in a
 * plot window that updates after every epoch with the time left (in batch mode a log line).
 */
final class TrainingProgress implements ProgressListener {
    private final JavaProgress inner = new JavaProgress();
    private final String title;
    private final ArrayList<Double> epochs = new ArrayList<Double>();
    private final ArrayList<Double> losses = new ArrayList<Double>();
    private final ArrayList<Double> validation = new ArrayList<Double>();
    private PlotWindow window;

    TrainingProgress(String title) {
        this.title = title;
    }

    void done() {
        inner.done();
    }

    /** Called by the engine after each epoch. */
    public void epoch(int epoch, int total, double loss, double validationLoss, double secondsLeft) {
        epochs.add((double) epoch);
        losses.add(loss);
        validation.add(validationLoss);
        String line = String.format(Locale.ROOT, "%s: epoch %d/%d, loss %.5f, validation loss %.5f, %s left",
                title, epoch, total, loss, validationLoss, minutes(secondsLeft));
        IJ.showStatus(line);
        if (IJ.getInstance() == null || ij.macro.Interpreter.isBatchMode()) {
            IJ.log(line);
            return;
        }
        Plot plot = new Plot(title + " loss", "epoch", "loss");
        plot.setColor("blue");
        plot.addPoints(epochs, losses, Plot.LINE);
        plot.setColor("red");
        plot.addPoints(epochs, validation, Plot.LINE);
        plot.setColor("black");
        plot.addLegend("training\nvalidation");
        plot.addLabel(0.02, 0.08, String.format(Locale.ROOT, "epoch %d/%d, %s left", epoch, total,
                minutes(secondsLeft)));
        if (window == null || window.isClosed()) {
            window = plot.show();
        } else {
            window.drawPlot(plot);
        }
    }

    static String minutes(double seconds) {
        long s = Math.round(Math.max(0, seconds));
        return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    @Override
    public void fraction(double f) {
        inner.fraction(f);
    }

    @Override
    public void status(String message) {
        inner.status(message);
    }

    @Override
    public void log(String message) {
        inner.log(message);
    }

    @Override
    public boolean cancelled() {
        return inner.cancelled();
    }
}
