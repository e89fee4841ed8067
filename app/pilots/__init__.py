"""Mon espace santé pilots (instruction DNS/DGCS/CNSA/2023/120): applications, selection,
flat-sum funding and its evidence, and the pilots' Mon espace santé usage."""
