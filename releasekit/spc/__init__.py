"""Statistical process control of the data a release serves: control limits learned from
each model's history of measurements, and the rules that judge a new measurement."""
